"""What a reference system is: equations written once for numpy (ground truth) and torch (tests, trainers)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np


def const(value, like):
    """`value` as an array of the same library, dtype and device as `like` (numpy array or torch tensor)."""
    if isinstance(like, np.ndarray):
        return np.asarray(value, dtype=like.dtype)
    import torch

    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


@dataclass(frozen=True)
class Regime:
    """How one regime samples a system: trajectory counts and observation times per trajectory; `irregular`: each
    training trajectory at its own random times (the test trajectories stay on one grid, as in the other regimes,
    so their test errors compare)."""

    n_train: int
    n_test: int
    n_times: int
    irregular: bool = False


def regimes(dense_times: int, sparse_times: int):
    """The regimes of an equation system: `dense` (16 training trajectories) and `sparse` (4), 8 test trajectories
    each, with these numbers of observation times per training trajectory, and `irregular`: dense's counts, each
    training trajectory at its own random times (a dataclass field default)."""
    return field(default_factory=lambda: {
        "dense": Regime(n_train=16, n_test=8, n_times=dense_times),
        "sparse": Regime(n_train=4, n_test=8, n_times=sparse_times),
        "irregular": Regime(n_train=16, n_test=8, n_times=dense_times, irregular=True)})


@dataclass
class System:
    """A reference system dx/dt = f(x).

    Subclasses define `f(x, xp)` once, with x of shape (..., dim) and `xp` the array module (numpy or torch),
    so the ground truth and the trainers' tests use the very same equations.
    """

    # "equations": data simulated from f; "measured": data read from measurements (specbench.systems.measured)
    kind: ClassVar[str] = "equations"
    name: str = ""
    dim: int = 0
    t_span: float = 10.0  # length of a training trajectory, in the system's time units
    test_horizon: float = 10.0  # length of a test rollout
    # The system's target for the common metric (normalised MSE of the training rollouts); presets may override.
    # 1e-2: a rollout whose error is 1% of each state's variance tracks its trajectory by eye over the whole span.
    target: float = 1e-2
    regimes: dict[str, Regime] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=lambda: {"width": 64, "depth": 2})

    @property
    def params(self) -> dict[str, Any]:
        """Every parameter that changes the equations (keys the data cache, written into datasets)."""
        raise NotImplementedError

    def f(self, x, xp):
        raise NotImplementedError

    def resized(self, regime: str, n_times: int | None = None, t_span: float | None = None,
                n_train: int | None = None) -> "System":
        """A copy whose `regime` has other trajectory lengths or counts (the scaling studies); the same equations.
        The dataset key includes t_span and the regime, so a resized dataset is cached apart."""
        old = self.regimes[regime]
        new = replace(old, n_train=n_train or old.n_train, n_times=n_times or old.n_times)
        return replace(self, t_span=self.t_span if t_span is None else float(t_span),
                       regimes={**self.regimes, regime: new})

    def rhs_numpy(self, t, x):
        """Right-hand side in scipy's `solve_ivp` convention: x of shape (dim,)."""
        return self.f(np.asarray(x), np)

    def rhs_torch(self, x):
        """Right-hand side on torch tensors of shape (..., dim)."""
        import torch

        return self.f(x, torch)

    def sample_initial(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` initial states, shape (n, dim)."""
        raise NotImplementedError

    def exact(self, t: np.ndarray, x0: np.ndarray) -> np.ndarray | None:
        """Closed-form trajectory of shape (len(t), dim) where one exists, else None."""
        return None
