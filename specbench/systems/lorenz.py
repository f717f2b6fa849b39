"""Lorenz system, sigma = 10, rho = 28, beta = 8/3.

Chaotic: nearby trajectories separate like e^{0.906 t}, so a rollout of even a perfect-but-for-round-off model
loses the truth after a few Lyapunov times (1/0.906 ~ 1.1 time units). Training trajectories therefore span a
few time units (2), and the test horizon stays within about one Lyapunov time (1.0), where a rollout error
measures the learned vector field rather than chaos.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specbench.systems.base import System, regimes


@dataclass
class Lorenz(System):
    sigma: float = 10.0
    rho: float = 28.0
    beta: float = 8.0 / 3.0
    name: str = "lorenz"
    dim: int = 3
    t_span: float = 2.0
    test_horizon: float = 1.0
    regimes: dict = regimes(201, 41)
    model: dict = field(default_factory=lambda: {"width": 64, "depth": 2})

    @property
    def params(self):
        return {"sigma": self.sigma, "rho": self.rho, "beta": self.beta}

    def f(self, x, xp):
        u, v, w = x[..., 0], x[..., 1], x[..., 2]
        return xp.stack([self.sigma * (v - u), u * (self.rho - w) - v, u * v - self.beta * w], -1)

    def sample_initial(self, rng, n):
        # A box around the attractor (|x|,|y| <~ 20, 5 <~ z <~ 45).
        return np.stack([rng.uniform(-15, 15, n), rng.uniform(-20, 20, n), rng.uniform(10, 40, n)], -1)
