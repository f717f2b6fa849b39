"""The common metric every claim rests on (specbench.numerics.metric), against closed forms: the true field scores about
0, and a known wrong field scores the MSE and normalised MSE its closed-form rollout gives."""
import numpy as np
import pytest
import torch

from specbench.numerics import metric  # its test_errors, imported by name, would be collected as a test
from specbench.systems.oscillator import Oscillator
from tests.helpers import TrueField, dataset

SHIFT = 0.1  # the wrong field's constant error in dv/dt


class ShiftedField(TrueField):
    """The oscillator's field plus the constant (0, SHIFT): x' = A x + b."""

    def forward(self, t, x):
        return self.system.rhs_torch(x) + torch.tensor([0.0, SHIFT], dtype=x.dtype)


def shifted_rollout(system: Oscillator, t: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """The closed-form solution of x' = A x + b: x* + e^{At} (x0 - x*), x* = (SHIFT / omega^2, 0) the fixed point
    (A x* = -b), e^{At} the oscillator's own closed form. (traj, time, state)."""
    fixed = np.array([SHIFT / system.omega ** 2, 0.0])
    return np.stack([fixed + system.exact(t, x - fixed) for x in x0])


def faster_rollout(system: Oscillator, t: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """The closed-form solution of the oscillator with omega 5% higher. (traj, time, state)."""
    faster = Oscillator(zeta=system.zeta, omega=1.05 * system.omega)
    return np.stack([faster.exact(t, x) for x in x0])


def errors(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(MSE, normalised MSE) as docs/design.md defines them, written out: the mean over (traj, time, state) of the
    squared error, the normalised one dividing each state by its variance over the truth's trajectories and times."""
    err = (pred - truth) ** 2
    var = truth.reshape(-1, truth.shape[-1]).var(0)
    return err.mean(), (err / var).mean()


def test_true_field_scores_zero_to_the_reference_solvers_tolerance():
    system, data = dataset("oscillator")  # noiseless: the data is the closed form itself
    model = TrueField(system)
    assert 0 <= metric.train_metric(model, data) < 1e-12
    mse, nmse, pred = metric.test_errors(model, data)
    assert 0 <= mse < 1e-12 and 0 <= nmse < 1e-12
    np.testing.assert_allclose(pred, data.test, atol=1e-6)


@pytest.mark.parametrize("field, closed_form", [
    (lambda system: ShiftedField(system), shifted_rollout),
    (lambda system: TrueField(Oscillator(omega=1.05)), faster_rollout),
])
def test_wrong_field_scores_its_closed_form_errors(field, closed_form):
    """train_metric is the normalised MSE over the training span, test_errors the MSE and normalised MSE over the
    test horizon from the held-out initial states: each equals the one computed from the closed-form rollout of
    the wrong field, to the reference solver's tolerance."""
    system, data = dataset("oscillator")
    model = field(system)
    train_pred = closed_form(system, data.t, data.train[:, 0])
    _, train_nmse = errors(train_pred, data.train)
    assert train_nmse > 1e-3  # far from zero: a wrong field
    assert metric.train_metric(model, data) == pytest.approx(train_nmse, rel=1e-5)
    test_pred = closed_form(system, data.t_test, data.test[:, 0])
    mse, nmse, pred = metric.test_errors(model, data)
    assert (mse, nmse) == pytest.approx(errors(test_pred, data.test), rel=1e-5)
    np.testing.assert_allclose(pred, test_pred, atol=1e-6)


@pytest.mark.parametrize("system_name, activation, gain", [("oscillator", "tanh", 3.0), ("lorenz", "tanh", 3.0),
                                                           ("network", "softplus", 1.0),
                                                           ("cubic-oscillator", "silu", 1.0)])
def test_the_numpy_solver_is_torchdiffeqs_dopri5_to_round_off(system_name, activation, gain):
    """The common metric's rollouts of a VectorField (specbench.numerics.dopri5, numpy) against torchdiffeq's dopri5 on
    the float64 copy of the same random network, from the system's training states: the same solution to round-off, and
    the same number of evaluations of the field (the same steps, accepted and rejected)."""
    from torchdiffeq import odeint

    from specbench.numerics.vector_field import build_model, data_scales

    _, data = dataset(system_name)
    model = build_model(data.train.shape[-1], data_scales(data.t, data.train), {"activation": activation}, seed=3)
    with torch.no_grad():  # a field with some life in it, not the initial near-zero one (bounded: where a field
        for p in model.parameters():  # blows up, round-off decides the steps of any two implementations)
            p.mul_(gain)
    x0, t = data.train[:, 0], data.t - data.t[0]
    calls = []
    ours = metric.rollout(model, x0, data.t)
    with metric.evaluation_limit(10 ** 9):
        field = metric.numpy_field(model)
        metric.dopri5.odeint(lambda _t, x: calls.append(1) or field(x), x0, t, metric.RTOL, metric.ATOL)
    model64, theirs_calls = metric.float64_copy(model), []
    with torch.no_grad():
        theirs = odeint(lambda _t, x: theirs_calls.append(1) or model64(_t, x), torch.as_tensor(x0),
                        torch.as_tensor(t), method="dopri5", rtol=metric.RTOL, atol=metric.ATOL)
    assert ours is not None and np.abs(ours).max() < 1e3 and len(calls) == len(theirs_calls) > 50
    np.testing.assert_allclose(ours, theirs.transpose(0, 1).numpy(), rtol=1e-9, atol=1e-11)


def test_the_numpy_simulation_of_a_driven_field_is_torchdiffeqs_step_for_step():
    """On measurements with a zero-order-hold input the metric's simulation is the numpy dopri5
    (`_solve_rows_numpy`): the torchdiffeq simulation (`solve_rows`, jump_t at the hold's jumps) to round-off, with
    the same number of evaluations of the field, on rows of their own times and their own input samples. (A linear
    hold stays with torchdiffeq: at its kinks the steps hang on the last bit of the first step, and two correct
    solvers then agree only to the tolerance, 1e-4 here.)"""
    hold = "zoh"
    from dataclasses import replace as with_

    from torchdiffeq import odeint

    from specbench.numerics.simulate import make_rows, solve_rows
    from specbench.numerics.vector_field import VectorField, general_scales
    from tests.test_driven import driven_data

    data, _ = driven_data(counts=(17, 31, 23, 29))
    data = with_(data, hold=hold)
    runs = data.trajectories("train")
    torch.manual_seed(3)
    model = VectorField(2, general_scales(data), width=16)
    rows = make_rows(runs, [(b, 0, len(r.t)) for b, r in enumerate(runs)], hold, torch.float64)
    x0 = np.random.default_rng(0).normal(size=(len(runs), 2))
    calls = {"numpy": 0, "torch": 0}
    fast = metric.numpy_field(model)

    def numpy_field(x, u):
        calls["numpy"] += 1
        return fast(x, u)
    model64 = metric.float64_copy(model)

    def torch_field(t, x, u):
        calls["torch"] += 1
        return model64.evaluate(t, x, u)
    got = metric._solve_rows_numpy(numpy_field, x0, rows, limit=10**6)
    with torch.inference_mode():
        want = solve_rows(odeint, torch_field, torch.as_tensor(x0), rows, "dopri5", rtol=metric.RTOL,
                          atol=metric.ATOL).numpy()
    assert calls["numpy"] == calls["torch"] > 100
    assert np.allclose(got, want, rtol=1e-8, atol=1e-12)
    # and the metric on these data is the same either way
    fast_metric = metric.simulate(model, data, "train", initial=np.zeros((len(runs), 2)))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(metric, "numpy_field", lambda model: None)
        slow_metric = metric.simulate(model, data, "train", initial=np.zeros((len(runs), 2)))
    for a, b in zip(fast_metric, slow_metric):
        assert np.allclose(a, b, rtol=1e-8, atol=1e-12)
