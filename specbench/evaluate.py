"""The common metric: rollouts of a learned vector field with a tight reference solver, no gradients.

Identical for every trainer, so it is the only loss the reports compare (docs/design.md, "Measurement protocol").
"""
from __future__ import annotations

import contextlib
import copy
import time

import numpy as np
import torch
from torchdiffeq import odeint

RTOL, ATOL = 1e-7, 1e-9
MAX_STEPS = 100_000
_deadline = [float("inf")]  # perf_counter time by which a rollout must end (see time_limit)


class RolloutTooSlow(Exception):
    """A rollout outlasted its time limit: the learned field is too stiff (or blown up) to integrate."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Within it, each rollout must finish in `seconds` or raise RolloutTooSlow: a diverging field ends its run
    quickly instead of holding the solver for its 100,000 steps."""
    _deadline.append(seconds)
    try:
        yield
    finally:
        _deadline.pop()


class _Watched(torch.nn.Module):
    """The field, checking the clock at every evaluation (the solver calls it a few times per step)."""

    def __init__(self, field, deadline: float):
        super().__init__()
        self.field, self.deadline = field, deadline

    def forward(self, t, x):
        if time.perf_counter() > self.deadline:
            raise RolloutTooSlow(f"a rollout of the common metric took over {_deadline[-1]:.3g} s: the learned "
                                 "field is too stiff to integrate")
        return self.field(t, x)


@torch.no_grad()
def rollout(model: torch.nn.Module, x0: np.ndarray, t: np.ndarray) -> np.ndarray | None:
    """Trajectories of dx/dt = model(x) from x0 (n, state) observed at t, shape (n, len(t), state), in float64
    with dopri5 at rtol 1e-7, atol 1e-9; None when the solver fails (the model's field is too stiff or blows up)."""
    device = next(model.buffers()).device
    model64 = _Watched(copy.deepcopy(model).double(), time.perf_counter() + _deadline[-1])
    x0_ = torch.as_tensor(x0, dtype=torch.float64, device=device)
    t_ = torch.as_tensor(t - t[0], dtype=torch.float64, device=device)
    try:
        out = odeint(model64, x0_, t_, method="dopri5", rtol=RTOL, atol=ATOL, options={"max_num_steps": MAX_STEPS})
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


def state_variance(y: np.ndarray) -> np.ndarray:
    return y.reshape(-1, y.shape[-1]).var(0) + 1e-12


def train_metric(model, data) -> float:
    """Normalised MSE of rollouts from each training trajectory's first observation against the training data."""
    return mse(rollout(model, data.train[:, 0], data.t), data.train, state_variance(data.train))


def test_errors(model, data) -> tuple[float, float, np.ndarray | None]:
    """(MSE, normalised MSE, rollouts) from the held-out initial states over the test horizon."""
    pred = rollout(model, data.test[:, 0], data.t_test)
    return mse(pred, data.test), mse(pred, data.test, state_variance(data.test)), pred
