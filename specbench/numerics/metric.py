"""The common metric: rollouts of a learned vector field with a tight reference solver, no gradients.

Identical for every trainer, so it is the only loss the reports compare (docs/design.md, "Measurement protocol").

On measurements (data in the general form, specbench.systems.datasets.NEEDS) it is the free-run simulation of the
field's own figure of merit: each trajectory simulated from its first sample with its input held as declared, judged on
the outputs; the observed outputs start at their first sample. A hidden state's initial value is not measured, and a
learned field may use any coordinates for it, so it is the model's own: "the free-run simulation of the test data
from the state that the training estimated" (the field's rule, issue 38).
- A training trajectory starts from the training's estimate: every trainer that learns from hidden states learns
  each training trajectory's initial state (`Trainer.initial_states`: the solver baselines' learned hidden values,
  multiple shooting's first shooting state, spectral's c at the first node), and the metric takes its hidden
  components. No fit: the training curve costs one simulation per evaluation, as on any system.
- A test trajectory was never trained on, so its hidden initial values are fitted, once per run (the test errors
  of the best checkpoint): L-BFGS (at most FIT_ITERATIONS iterations) on the outputs' normalised error of the
  simulation over the first FIT_SAMPLES samples, from the trainers' first guess of the hidden states (their scale
  mean, or an output's rate: `vector_field.hidden_start`) and within 3 of their scale's std of it. A trainer that
  gives no estimate (a plugin's) has its training trajectories fitted the same way.
The same solver, tolerances, outputs and normalisation for every trainer; only the model and its estimate differ.
"""
from __future__ import annotations

import contextlib
import copy
import weakref

import numpy as np
import torch
from torchdiffeq import odeint

from specbench.numerics import dopri5
from specbench.numerics.simulate import make_rows, solve_rows
from specbench.numerics.vector_field import VectorField, general_scales, hidden_start

RTOL, ATOL = 1e-7, 1e-9
# The most evaluations of the field one rollout may take (about 3,300 dopri5 steps). The true fields of the
# built-in systems take 500 to 1,700 over their training and test spans at RTOL, ATOL; a learned field that needs
# over 12 times that is too stiff (or blown up) to integrate. Work, not seconds: a busy machine must not turn a
# healthy run into a diverged one (about 7 s of a core for a 64-wide MLP on 16 trajectories).
MAX_EVALUATIONS = 20_000
FIT_SAMPLES, FIT_ITERATIONS = 32, 5  # the estimate of hidden initial states on measurements
_limit: list[int] = []  # a lower bound set by `evaluation_limit`, innermost last


class RolloutTooSlow(Exception):
    """A rollout needed more evaluations of the field than its limit: too stiff (or blown up) to integrate."""


@contextlib.contextmanager
def evaluation_limit(evaluations: int):
    """Within it, each rollout may take at most `evaluations` evaluations of the field (the warm-up's sliver of
    data needs far fewer than a run's rollouts)."""
    _limit.append(evaluations)
    try:
        yield
    finally:
        _limit.pop()


class _Counted:
    """The field, counting its evaluations (the solver calls it six times per dopri5 step), called with the
    arguments its solver gives it."""

    def __init__(self, field, limit: int):
        self.field, self.limit, self.calls = field, limit, 0

    def __call__(self, *args):
        self.calls += 1
        if self.calls > self.limit:
            raise RolloutTooSlow(f"a rollout of the common metric needed over {self.limit:,} evaluations of the "
                                 "field: the learned field is too stiff to integrate")
        return self.field(*args)


# model -> its float64 copy: made once per model and given the model's current weights at each rollout, not deep-
# copied and converted every time (a run evaluates its model at every step of the cadence). Weak keys: a copy goes
# with its model.
_FLOAT64: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def float64_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy of `model` with its current weights and buffers (`model.double()`'s values, exactly), kept
    for the next call; no gradients through it."""
    copy64 = _FLOAT64.get(model)
    with torch.no_grad():
        if copy64 is not None:
            try:
                copy64.load_state_dict(model.state_dict())
                return copy64
            except RuntimeError:  # the model's tensors changed shape: a new copy
                pass
        copy64 = copy.deepcopy(model).double().requires_grad_(False)
    _FLOAT64[model] = copy64
    return copy64


def _silu(h: np.ndarray) -> np.ndarray:
    """h / (1 + exp(-h)), in place in h (the same operations as torch's, in the same order)."""
    e = np.negative(h)
    np.exp(e, out=e)
    e += 1.0
    return np.divide(h, e, out=h)


# Activations in numpy, each overwriting its argument (a fresh product of the layer before).
_ACTIVATIONS = {torch.nn.Tanh: lambda h: np.tanh(h, out=h), torch.nn.SiLU: _silu,
                torch.nn.Softplus: lambda h: np.where(h > 20, h, np.log1p(np.exp(np.minimum(h, 20))))}


def numpy_field(model: torch.nn.Module):
    """`model`'s field in numpy, float64, with its current weights (`model.double()`'s values, to round-off):
    `field(x)`, or `field(x, u)` for a driven one, for a VectorField on the CPU whose layers are all known here;
    else None (the simulation then goes through torch). Each call returns a new array."""
    if not isinstance(model, VectorField) or next(model.buffers()).device.type != "cpu":
        return None
    layers = []  # [weight (in, out), bias, activation or None]
    for layer in model.net:
        if isinstance(layer, torch.nn.Linear):
            weight = getattr(layer, "masked_weight", layer.weight)  # a structure's absent connections are zeros
            layers.append([weight.detach().double().numpy().T.copy(), layer.bias.detach().double().numpy(), None])
        elif type(layer) in _ACTIVATIONS and layers and layers[-1][2] is None:
            layers[-1][2] = _ACTIVATIONS[type(layer)]
        else:
            return None
    if layers[-1][2] is not None:
        return None
    buffer = lambda name: getattr(model, name).detach().double().numpy()  # noqa: E731
    mean, std, scale = buffer("mean"), buffer("std"), buffer("deriv_std")
    # the input's normalisation and the output's scale folded into the first and last layers: three fewer
    # operations per evaluation, the same field to round-off; a driven field's first layer in two parts, the
    # state's and the input's (the network's input is the two side by side)
    w, b, act = layers[0]
    dim = len(mean)
    copied = source = None
    if model.copies:
        copied = model.copied.cpu().numpy().astype(bool)
        source = model.source.cpu().numpy()[copied]
    w_u = None
    if model.n_inputs:
        u_mean, u_std = buffer("input_mean"), buffer("input_std")
        w, w_u = w[:dim], w[dim:]
        b = b - (u_mean / u_std) @ w_u
        w_u = w_u / u_std[:, None]
    layers[0] = [w / std[:, None], b - (mean / std) @ w, act]
    w, b, act = layers[-1]
    layers[-1] = [w * scale, b * scale, act]

    def field(x: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
        # a layer's product is a new array, its bias and activation applied in place: the arithmetic of
        # `act(h @ w + b)`, a third of the temporaries (a rollout calls this thousands of times on small arrays)
        h = x
        for n, (w, b, act) in enumerate(layers):
            h = h @ w
            if n == 0 and w_u is not None:
                h += u @ w_u
            h += b
            if act is not None:
                h = act(h)
        if copied is not None:  # the derivatives a structure knows: x_i' = x_J
            h[..., copied] = x[..., source]
        return h

    return field


def rollout(model: torch.nn.Module, x0: np.ndarray, t: np.ndarray) -> np.ndarray | None:
    """Trajectories of dx/dt = model(x) from x0 (n, state) observed at t, shape (n, len(t), state), in float64
    with dopri5 at rtol 1e-7, atol 1e-9; None when the solver fails (the model's field is too stiff or blows up).
    All trajectories are one batched solve. A VectorField on the CPU is solved in numpy (`specbench.numerics.dopri5`:
    torchdiffeq's algorithm step for step: 2-5 ms a rollout of the five systems' training data against
    14-28 ms, 4-8x cheaper); any other model with torchdiffeq in inference mode (no autograd bookkeeping at all), a
    VectorField layer by layer without nn.Module's call machinery (`VectorField.evaluate`)."""
    limit = _limit[-1] if _limit else MAX_EVALUATIONS
    field = numpy_field(model) if not getattr(model, "n_inputs", 0) else None
    if field is not None:
        counted = _Counted(field, limit)
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # a blown-up field ends as a failed solve
                out = dopri5.odeint(lambda _t, x: counted(x), np.asarray(x0, dtype=np.float64),
                                    np.asarray(t, dtype=np.float64) - t[0], RTOL, ATOL)
        except dopri5.SolverFailed:
            return None
        out = out.swapaxes(0, 1)
        return out if np.isfinite(out).all() else None
    device = next(model.buffers()).device
    model64 = float64_copy(model)
    field = _Counted(model64.evaluate if isinstance(model64, VectorField) else model64, limit)
    with torch.inference_mode():
        x0_ = torch.as_tensor(x0, dtype=torch.float64, device=device)
        t_ = torch.as_tensor(t - t[0], dtype=torch.float64, device=device)
        try:
            out = odeint(field, x0_, t_, method="dopri5", rtol=RTOL, atol=ATOL)
        except AssertionError:
            return None
        out = out.transpose(0, 1).cpu().numpy()
    return out if np.isfinite(out).all() else None


def mse(pred: np.ndarray | None, target: np.ndarray, var: np.ndarray | None = None) -> float:
    """Mean squared error over (traj, time, state), each state divided by `var` when given; inf for no rollout."""
    if pred is None:
        return float("inf")
    err = (pred - target) ** 2
    if var is not None:
        err = err / var
    return float(err.mean())


def output_fit(pred: np.ndarray | None, y: np.ndarray) -> tuple[float | None, float | None]:
    """The system-identification field's figures of a free-run simulation `pred` against measured outputs `y`
    (traj, time, output): RMSE in the outputs' own units, and R² = 1 - SSE / SST, each output's sums over every
    trajectory and time, averaged over the outputs. (None, None) for no simulation."""
    if pred is None:
        return None, None
    err = (pred - y).reshape(-1, y.shape[-1])
    spread = (y - y.reshape(-1, y.shape[-1]).mean(0)).reshape(-1, y.shape[-1])
    r2 = 1.0 - (err ** 2).sum(0) / np.maximum((spread ** 2).sum(0), 1e-300)
    return float(np.sqrt((err ** 2).mean())), float(r2.mean())


def state_variance(y: np.ndarray) -> np.ndarray:
    return y.reshape(-1, y.shape[-1]).var(0) + 1e-12


def train_metric(model, data, initial: np.ndarray | None = None) -> float:
    """Normalised MSE of rollouts from each training trajectory's first observation against the training data. On
    hidden states `initial` (traj, state) is the trainer's own estimate of each training trajectory's initial state
    (`Trainer.initial_states`), whose hidden components start its simulation; None: they are fitted, as the test
    trajectories' are."""
    if data.needs:
        y = np.concatenate([r.y for r in data.trajectories("train")])[None]
        return mse(joined(simulate(model, data, "train", initial)), y, state_variance(y))
    return mse(rollout(model, data.train[:, 0], data.t), data.train, state_variance(data.train))


def test_errors(model, data) -> tuple[float, float, np.ndarray | list | None]:
    """(MSE, normalised MSE, rollouts) from the held-out initial states over the test horizon; on measurements the
    rollouts are a list of each test trajectory's outputs (time, output), and the errors are the outputs'."""
    if data.needs:
        pred = simulate(model, data, "test")
        y = np.concatenate([r.y for r in data.trajectories("test")])[None]
        return mse(joined(pred), y), mse(joined(pred), y, state_variance(y)), pred
    pred = rollout(model, data.test[:, 0], data.t_test)
    return mse(pred, data.test), mse(pred, data.test, state_variance(data.test)), pred


def joined(pred: list | None) -> np.ndarray | None:
    """Per-trajectory simulations (time, output) as one (1, samples, output) array, as `mse` and `output_fit`
    weigh them: every sample of every trajectory alike."""
    return None if pred is None else np.concatenate(pred)[None]


def simulate(model, data, split: str, initial: np.ndarray | None = None) -> list[np.ndarray] | None:
    """The free-run simulation of each trajectory of `split` (the module's docstring), its outputs (time, output)
    at its own times, in float64 with dopri5 at RTOL, ATOL; None when the solver fails. Each starts from its first
    observed outputs and, for hidden states, from the hidden components of `initial` (traj, state), or where that
    is None from their fit (`fit_hidden`)."""
    runs = data.trajectories(split)
    dim = data.system.dim
    outputs = list(data.outputs if data.outputs is not None else range(dim))
    hidden = [k for k in range(dim) if k not in outputs]
    device = next(model.buffers()).device
    order = torch.as_tensor(np.argsort(outputs + hidden), device=device)  # [outputs, hidden] -> x
    model64 = float64_copy(model)
    field = model64.evaluate if isinstance(model64, VectorField) else model64
    rows = make_rows(runs, [(b, 0, len(r.t)) for b, r in enumerate(runs)], data.hold, torch.float64, device)
    # every jump of a held input ends a dopri5 step: a healthy field takes about one step (7 evaluations) per held
    # sample (the untrained field on cascaded tanks' 1,023 jumps: 7,174), and the limit allows 12 times that, as
    # MAX_EVALUATIONS does the true fields' work (at 7 per jump a trained field there ran out at 27,154)
    jumps = len(rows.signal.jumps(float(rows.tau.max()))) if rows.signal is not None and data.hold == "zoh" else 0
    limit = (_limit[-1] if _limit else MAX_EVALUATIONS) + 12 * 7 * jumps

    def solve(x0, rows, grad=False):
        with torch.enable_grad() if grad else torch.inference_mode():
            return solve_rows(odeint, _Counted(field, limit), x0, rows, "dopri5", rtol=RTOL, atol=ATOL)

    y0 = rows.y[:, 0]
    try:
        x0 = y0
        if hidden:
            h0 = fit_hidden(solve, data, runs, outputs, hidden, y0, order) if initial is None else \
                torch.as_tensor(np.asarray(initial)[:, hidden], dtype=torch.float64, device=device)
            x0 = torch.cat([y0, h0], -1)[:, order]
        # numpy where it is torchdiffeq's to round-off: not on a linear hold, whose kinks make the step sequence
        # (and so the result, to the solver's tolerance) hang on the last bit of the first step's size
        fast = numpy_field(model) if data.hold == "zoh" or rows.signal is None else None
        out = (solve(x0, rows).cpu().numpy() if fast is None else
               _solve_rows_numpy(fast, x0.cpu().numpy(), rows, limit))[..., outputs]
    except (AssertionError, dopri5.SolverFailed):
        return None
    pred = [out[b, : len(r.t)] for b, r in enumerate(runs)]
    return pred if all(np.isfinite(p).all() for p in pred) else None


def _solve_rows_numpy(field, x0: np.ndarray, rows, limit: int) -> np.ndarray:
    """`simulate.solve_rows` with dopri5 in numpy (`specbench.numerics.dopri5`, torchdiffeq's steps to round-off,
    several times cheaper on the small arrays of a simulation): every row from x0 (rows, state) at its own times,
    (rows, L, state), on the union of the rows' times, each row's input held as `InputSignal` holds it and the
    solver told where a zero-order hold jumps."""
    tau = rows.tau.cpu().numpy()
    grid = np.unique(tau)
    counted = _Counted(field, limit)
    signal, jumps = rows.signal, None
    if signal is None:
        def f(_t, x):
            return counted(x)
    else:
        t_u, u, last = (a.cpu().numpy() for a in (signal.t_u, signal.u.double(), signal.last))
        each = np.arange(len(t_u))
        below = np.maximum(last - 1, 0)

        def u_at(t: float) -> np.ndarray:  # InputSignal.__call__ in numpy: the sample at or before t, held
            k = np.minimum(np.maximum((t_u <= t).sum(1) - 1, 0), last)
            if signal.hold == "zoh":
                return u[each, k]
            k = np.minimum(k, below)
            k1 = np.minimum(k + 1, last)
            t0, t1 = t_u[each, k], t_u[each, k1]
            w = np.clip((t - t0) / np.where(t1 > t0, t1 - t0, 1.0), 0, 1)[:, None]
            return u[each, k] * (1 - w) + u[each, k1] * w

        def f(t, x):
            return counted(x, u_at(t))
        if signal.hold == "zoh":
            jumps = signal.jumps(float(grid[-1]))
    with np.errstate(over="ignore", invalid="ignore"):  # a blown-up field ends as a failed solve
        out = dopri5.odeint(f, x0, grid, RTOL, ATOL, jumps)
    return out[np.searchsorted(grid, tau), np.arange(len(x0))[:, None]]


def fit_hidden(solve, data, runs, outputs: list[int], hidden: list[int], y0: torch.Tensor, order: torch.Tensor
               ) -> torch.Tensor:
    """Hidden initial values (traj, hidden) that fit the simulation's outputs over each trajectory's first
    FIT_SAMPLES samples: L-BFGS, at most FIT_ITERATIONS iterations, from the trainers' first guess of them
    (`vector_field.hidden_start`: the scale mean, or an output's rate) and within 3 of their scale's std of it.
    `solve(x0, rows, grad)` is the simulation."""
    device = y0.device
    first = make_rows(runs, [(b, 0, min(len(r.t), FIT_SAMPLES)) for b, r in enumerate(runs)], data.hold,
                      torch.float64, device)
    numbers = general_scales(data)
    scales = {k: torch.as_tensor(v, dtype=torch.float64, device=device) for k, v in numbers.items()}
    std = scales["std"][outputs]
    start = torch.as_tensor(np.concatenate([hidden_start(data, r, r.t[:1], hidden, numbers) for r in runs]),
                            dtype=torch.float64, device=device)  # the trainers' first guess (Trainer.hidden_start)
    # within 3 of its scale's std of that first guess: the fit's line search cannot take the state where the field is
    # too stiff to integrate
    reach = 3 * scales["std"][hidden]
    z = torch.zeros_like(start, requires_grad=True)
    fit = torch.optim.LBFGS([z], max_iter=FIT_ITERATIONS, line_search_fn="strong_wolfe")

    def closure():
        fit.zero_grad()
        h0 = start + reach * torch.tanh(z)
        x = solve(torch.cat([y0, h0], -1)[:, order], first, grad=True)
        err = (((x[..., outputs] - first.y) / std) ** 2 * first.mask[..., None]).sum()
        err.backward()
        return err
    try:
        fit.step(closure)
    except AssertionError:  # a trial start the field cannot integrate from: the fit ends there
        pass
    h0 = (start + reach * torch.tanh(z)).detach()
    return h0 if torch.isfinite(h0).all() else start  # a fit that ran off keeps its start
