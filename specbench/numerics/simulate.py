"""Simulating a learned field on measurements: rows of trajectory pieces, each with its own times and its own held
input, solved together. The solver baselines train through it and the common metric judges with it.

A row is a piece of one trajectory: its observation times counted from the piece's start (`tau`, so that every row
starts at 0 and one batched solve serves them all), and its input samples on the same local clock. torchdiffeq
takes one time grid for a batch: the rows are solved on the union of their times and each row reads its own
(`solve_rows`); torchode takes a grid per row.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from specbench.systems.measurements import Trajectory


class InputSignal:
    """u(t) of each row, held between its samples as the data declare ("zoh" or "linear"), at a row-local time t:
    a scalar (every row at once, as torchdiffeq asks) or one per row (rows,) as torchode does. Samples are padded to
    a common count with +inf times. Times are compared in float64: torchdiffeq hands the field float64 times (the
    rows' grid), a step that ends at a jump evaluating it one float64 ulp before (its `perturb`), so that
    evaluation reads the sample before the jump; torchode's float32 times are exact in float64. (Compared in
    float32, that ulp was lost: every step ending at a jump read the next sample at its end and was rejected until
    it was tiny, some 6x the evaluations of the field on cascaded tanks, 46,000 a simulation instead of 7,200.)"""

    def __init__(self, t_u: torch.Tensor, u: torch.Tensor, count: torch.Tensor, hold: str):
        self.t_u, self.u, self.hold = t_u, u, hold  # (rows, m) float64, (rows, m, inputs), "zoh" | "linear"
        self.last = (count - 1).clamp(min=0)  # (rows,) the index of each row's last sample
        self.rows = torch.arange(len(t_u), device=t_u.device)

    def __call__(self, t) -> torch.Tensor:
        """u at local time t, (rows, inputs)."""
        t = torch.as_tensor(t, dtype=self.t_u.dtype, device=self.t_u.device).expand(len(self.t_u))[:, None].contiguous()
        k = (torch.searchsorted(self.t_u, t, right=True)[:, 0] - 1).clamp(min=0)
        k = torch.minimum(k, self.last)
        if self.hold == "zoh":
            return self.u[self.rows, k]
        k = torch.minimum(k, (self.last - 1).clamp(min=0))
        k1 = torch.minimum(k + 1, self.last)
        t0, t1 = self.t_u[self.rows, k], self.t_u[self.rows, k1]
        w = ((t[:, 0] - t0) / torch.where(t1 > t0, t1 - t0, torch.ones_like(t0))).clamp(0, 1)[:, None]
        w = w.to(self.u.dtype)  # the times' float64, the input's dtype
        return self.u[self.rows, k] * (1 - w) + self.u[self.rows, k1] * w

    def jumps(self, end: float) -> np.ndarray:
        """The zero-order hold's jump times in (0, end) over every row, sorted: where an adaptive torchdiffeq solver
        must end a step (its `jump_t`). None for a linear hold: it has no jump."""
        times = self.t_u[torch.isfinite(self.t_u)].unique().cpu().numpy()
        return times[(times > 0) & (times < end)]


class Driven(torch.nn.Module):
    """The field as a solver calls it, f(t, x) = model(t, x, u(t)); the model alone where there is no input."""

    def __init__(self, model, signal: InputSignal | None):
        super().__init__()
        self.model, self.signal = model, signal

    def forward(self, t, x):
        return self.model(t, x, None if self.signal is None else self.signal(t))


@dataclass
class Rows:
    """Pieces of trajectories to solve together: local times `tau` (rows, L) in float64, padded past a row's end
    with later times; `mask` (rows, L) the real observations; `y` (rows, L, outputs) their values (0 where padded);
    `signal` the rows' inputs (None: no input)."""

    tau: torch.Tensor
    mask: torch.Tensor
    y: torch.Tensor
    signal: InputSignal | None

    def select(self, rows: torch.Tensor) -> "Rows":
        s = self.signal
        signal = None if s is None else InputSignal(s.t_u[rows], s.u[rows], s.last[rows] + 1, s.hold)
        return Rows(self.tau[rows], self.mask[rows], self.y[rows], signal)


def make_rows(runs: list[Trajectory], pieces: list[tuple[int, int, int]], hold: str, dtype=torch.float32,
              device="cpu") -> Rows:
    """Rows of the pieces (trajectory, first observation, observations) of `runs`. A piece shorter than the longest
    is padded with times past its end (its last interval repeated), masked out. Each row's input samples are those
    from the one at or before the piece's start to its end."""
    length = max(n for _, _, n in pieces)
    tau = np.zeros((len(pieces), length))
    y = np.zeros((len(pieces), length, runs[0].y.shape[1]))
    mask = np.zeros((len(pieces), length), dtype=bool)
    samples = []
    for i, (b, s, n) in enumerate(pieces):
        r = runs[b]
        t = r.t[s: s + n] - r.t[s]
        step = t[-1] - t[-2] if n > 1 else 1.0
        tau[i, :n], tau[i, n:] = t, t[-1] + step * np.arange(1, length - n + 1)
        y[i, :n], mask[i, :n] = r.y[s: s + n], True
        if r.u is not None:
            lo = max(0, np.searchsorted(r.t_u, r.t[s], side="right") - 1)
            hi = np.searchsorted(r.t_u, r.t[s + n - 1], side="left") + 1
            samples.append((r.t_u[lo:hi] - r.t[s], r.u[lo:hi]))
    signal = None
    if samples:
        m = max(len(t) for t, _ in samples)
        t_u = np.full((len(pieces), m), np.inf)
        u = np.zeros((len(pieces), m, samples[0][1].shape[1]))
        for i, (t, v) in enumerate(samples):
            t_u[i, : len(t)], u[i, : len(t)], u[i, len(t):] = t, v, v[-1]
        signal = InputSignal(torch.as_tensor(t_u, dtype=torch.float64, device=device),
                             torch.as_tensor(u, dtype=dtype, device=device),
                             torch.as_tensor([len(t) for t, _ in samples], device=device), hold)
    as_t = lambda a, d: torch.as_tensor(a, dtype=d, device=device)  # noqa: E731
    return Rows(as_t(tau, torch.float64), as_t(mask, torch.bool), as_t(y, dtype), signal)


def solve_rows(odeint, field, x0: torch.Tensor, rows: Rows, method: str, step: float | None = None,
               **kwargs) -> torch.Tensor:
    """torchdiffeq's solution of every row from x0 (rows, state) at its own times, (rows, L, state): one solve on
    the union of the rows' times, each row read at its own. A zero-order-hold input's jumps end the steps: an
    adaptive method gets them as `jump_t`; a fixed-step one (`step`: its step size) steps on a grid of the union,
    the jumps and steps of at most `step`, perturbed at both ends so that a step ending at a jump reads the input
    before it (torchdiffeq's `perturb`)."""
    if step is not None and rows.signal is None and not bool((rows.tau == rows.tau[:1]).all()):
        return _solve_rescaled(odeint, field, x0, rows, method, step, **kwargs)
    grid = rows.tau.flatten().unique()  # float64, sorted
    end = float(grid[-1])
    jumps = rows.signal.jumps(end) if rows.signal is not None and rows.signal.hold == "zoh" else np.array([])
    options = dict(kwargs.pop("options", {}))
    if step is not None:
        points = np.union1d(np.union1d(grid.cpu().numpy(), jumps), np.arange(0.0, end, step))
        steps = torch.as_tensor(points, dtype=torch.float64, device=grid.device)
        options.update(grid_constructor=lambda f, y0, t: steps, perturb=True)
    elif len(jumps):
        options["jump_t"] = torch.as_tensor(jumps, dtype=torch.float64, device=grid.device)
    if "adjoint_options" in kwargs and "jump_t" in options:
        kwargs["adjoint_options"] = {**kwargs["adjoint_options"], "jump_t": options["jump_t"]}
    solution = odeint(Driven(field, rows.signal), x0, grid, method=method, options=options, **kwargs)
    at = torch.searchsorted(grid, rows.tau)  # (rows, L): each row's times in the union
    return solution[at, torch.arange(len(x0), device=x0.device)[:, None]]


class _Rescaled(torch.nn.Module):
    """dx/ds = dt/ds f(x): each row's k-th observation interval mapped onto [k, k + 1] of a shared clock s."""

    def __init__(self, field, intervals: torch.Tensor):
        super().__init__()
        self.field, self.intervals = field, intervals  # (rows, L - 1): each row's observation intervals

    def forward(self, s, x):
        # the interval s lies in; a step's end reaches the interval's end from below (torchdiffeq's perturb)
        k = int(torch.floor(torch.as_tensor(s, dtype=torch.float64)).clamp(0, self.intervals.shape[1] - 1))
        return self.field(s, x, None) * self.intervals[:, k:k + 1].to(x.dtype)


def _solve_rescaled(odeint, field, x0: torch.Tensor, rows: Rows, method: str, step: float, **kwargs) -> torch.Tensor:
    """A fixed-step solve of input-free rows with times of their own (an irregular regime), each row on its own
    clock: its k-th observation interval is [k, k + 1] of a clock s shared by every row (dx/ds = dt_k f(x), exactly
    the method's steps on each row's own interval, of a common count per interval), so a batch costs the steps of
    one trajectory, where stepping on the union of the rows' times (`solve_rows`, what torchdiffeq asks for one
    grid, and what a solver with an input must do: its jumps are at real times) costs about one trajectory's
    steps per row. The count of steps in interval k keeps every row's steps at most `step`."""
    intervals = rows.tau.diff(dim=1)  # (rows, L - 1), float64, positive (padding repeats a row's last interval)
    counts = torch.ceil(intervals.max(0).values / step).clamp(min=1).long().tolist()
    points = np.concatenate([k + np.arange(n) / n for k, n in enumerate(counts)] + [[len(counts)]])
    steps = torch.as_tensor(points, dtype=torch.float64, device=x0.device)
    s = torch.arange(len(counts) + 1, dtype=torch.float64, device=x0.device)
    options = {**dict(kwargs.pop("options", {})), "grid_constructor": lambda f, y0, t: steps, "perturb": True}
    return odeint(_Rescaled(field, intervals), x0, s, method=method, options=options, **kwargs).transpose(0, 1)
