"""The irregular regime: equation systems observed at random times of each trajectory's own (issue 38), and what
the trainers solve on it."""
import numpy as np
import pytest
import torch
from torchdiffeq import odeint

from specbench.numerics.simulate import make_rows, solve_rows
from specbench.registries import get_system
from specbench.running.studies import Size, plan_regimes
from specbench.systems.datasets import dataset_key, generate
from specbench.systems.measurements import Trajectory


def test_the_irregular_regime_observes_each_trajectory_at_its_own_times_and_tests_on_a_grid():
    system = get_system("lotka-volterra")
    data = generate(system, "irregular", noise=0.0, seed=1)
    train, test = data.trajectories("train"), data.trajectories("test")
    dense = system.regimes["dense"]
    assert len(train) == dense.n_train and all(len(r.t) == dense.n_times for r in train)
    assert all(r.t[0] == 0.0 and np.all(np.diff(r.t) > 0) and r.t[-1] <= system.t_span for r in train)
    assert not np.array_equal(train[0].t, train[1].t)
    assert data.needs == {"irregular"}
    # the test trajectories on one grid, as in the dense regime, so the regimes' test errors compare
    regular = generate(system, "dense", noise=0.0, seed=1)
    assert all(np.array_equal(r.t, regular.t_test) for r in test)
    # each observation is the true state at its time
    from specbench.systems.datasets import integrate
    assert np.allclose(integrate(system, train[3].y[0], train[3].t), train[3].y, atol=1e-7)
    # the same seed, the same times; another seed, others
    assert np.array_equal(generate(system, "irregular", 0.0, 1).trajectories("train")[5].t, train[5].t)
    assert not np.array_equal(generate(system, "irregular", 0.0, 2).trajectories("train")[5].t, train[5].t)


def test_the_regular_regimes_keep_their_dataset_keys():
    """`irregular` joined the regime's fields; the regular regimes' keys (and so their cached files) stay."""
    import hashlib
    import json

    from specbench.systems.datasets import DATA_VERSION
    system = get_system("oscillator")
    spec = system.regimes["dense"]
    old = {"version": DATA_VERSION, "system": system.name, "params": system.params, "regime": "dense",
           "regime_spec": {"n_train": spec.n_train, "n_test": spec.n_test, "n_times": spec.n_times},
           "t_span": system.t_span, "test_horizon": system.test_horizon, "noise": 0.0, "seed": 0}
    expected = hashlib.sha256(json.dumps(old, sort_keys=True, default=str).encode()).hexdigest()[:20]
    assert dataset_key(system, "dense", 0.0, 0) == expected
    assert dataset_key(system, "irregular", 0.0, 0) != dataset_key(system, "dense", 0.0, 0)


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.tensor([[-0.1, 1.0], [-1.0, -0.1]], dtype=torch.float64)

    def forward(self, t, x, u=None):
        return x @ self.a.T


def _rows(seed=0, n=5, length=12):
    rng = np.random.default_rng(seed)
    runs = [Trajectory(np.concatenate([[0.0], np.sort(rng.uniform(0, 6, length - 1))]), rng.normal(size=(length, 2)))
            for _ in range(n)]
    return runs, make_rows(runs, [(b, 0, length) for b in range(n)], "zoh", torch.float64)


@pytest.mark.parametrize("method", ["rk4", "euler", "midpoint"])
def test_a_fixed_step_solve_of_rows_with_their_own_times_is_each_rows_own_solve(method):
    """Each row solved on its own clock (one batch, a shared count of steps per interval) is the method's solve of
    that row alone on its own times with those steps, to round-off; and every step is at most the step asked."""
    runs, rows = _rows()
    x0 = torch.as_tensor(np.stack([r.y[0] for r in runs]))
    step = 0.2
    got = solve_rows(odeint, Linear(), x0, rows, method, step=step)
    intervals = rows.tau.diff(dim=1)
    counts = torch.ceil(intervals.max(0).values / step).long()
    for b, r in enumerate(runs):
        grid = np.concatenate([r.t[k] + (r.t[k + 1] - r.t[k]) * np.arange(n) / n
                               for k, n in enumerate(counts.tolist())] + [[r.t[-1]]])
        assert np.diff(grid).max() <= step + 1e-12
        alone = odeint(lambda t, x: Linear()(t, x), x0[b], torch.as_tensor(r.t), method=method,
                       options={"grid_constructor": lambda f, y0, t: torch.as_tensor(grid)})
        assert torch.allclose(got[b], alone, rtol=1e-12, atol=1e-12), (b, (got[b] - alone).abs().max())
    # and it is the true solution to the method's accuracy
    if method == "rk4":
        from scipy.linalg import expm
        a = Linear().a.numpy()
        for b, r in enumerate(runs):
            exact = np.stack([expm(a * t) @ r.y[0] for t in r.t])
            assert np.abs(got[b].numpy() - exact).max() < 1e-4


def test_rows_on_their_own_clock_cost_far_fewer_steps_than_on_the_union_of_their_times():
    runs, rows = _rows(n=16, length=30)
    x0 = torch.as_tensor(np.stack([r.y[0] for r in runs]))
    calls = {"n": 0}

    class Counted(Linear):
        def forward(self, t, x, u=None):
            calls["n"] += 1
            return super().forward(t, x)

    solve_rows(odeint, Counted(), x0, rows, "rk4", step=0.5)
    own = calls["n"]
    calls["n"] = 0
    shared = make_rows(runs, [(b, 0, 30) for b in range(16)], "zoh", torch.float64)
    shared.tau[:] = shared.tau[0]  # one grid: the union is one row's times
    solve_rows(odeint, Counted(), x0, shared, "rk4", step=0.5)
    one_grid = calls["n"]
    union = len(rows.tau.flatten().unique())
    assert own < 4 * one_grid and own < union  # the union would be a step (4 evaluations) per point at least


def test_the_regimes_study_runs_the_irregular_regime_for_every_trainer():
    jobs = plan_regimes(Size(full=False, seeds=1, device="cpu", threads=1))
    irregular = {j.trainer for j in jobs if j.regime == "irregular"}
    assert irregular and irregular == {j.trainer for j in jobs if j.regime == "dense"}
    assert {j.study.series for j in jobs} == {"dense", "sparse", "irregular"}


def test_the_metric_on_irregular_data_is_the_torch_simulation_to_round_off(monkeypatch):
    """On an input-free, fully observed irregular dataset the metric is one numpy rollout read at the union of
    the trajectories' times: the same numbers as the general (torchdiffeq) simulation."""
    from specbench.numerics import metric
    from specbench.numerics.vector_field import VectorField, general_scales
    system = get_system("oscillator")
    data = generate(system, "irregular", noise=0.01, seed=0)
    torch.manual_seed(0)
    model = VectorField(system.dim, general_scales(data), width=16)
    fast = metric.train_metric(model, data)
    test_fast = metric.test_errors(model, data)
    monkeypatch.setattr(metric, "numpy_field", lambda model: None)
    slow = metric.train_metric(model, data)
    test_slow = metric.test_errors(model, data)
    assert np.isfinite(fast) and fast == pytest.approx(slow, rel=1e-9)
    assert test_fast[0] == pytest.approx(test_slow[0], rel=1e-9)
    for a, b in zip(test_fast[2], test_slow[2]):
        assert np.allclose(a, b, rtol=1e-9, atol=1e-12)
