"""Lotka–Volterra predator-prey: dx/dt = 1.5x - xy, dy/dt = xy - 3y.

V = x - 3 ln x + y - 1.5 ln y is constant along every trajectory (closed orbits around (3, 1.5)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specbench.systems.base import System, regimes


@dataclass
class LotkaVolterra(System):
    a: float = 1.5
    c: float = 3.0
    name: str = "lotka-volterra"
    dim: int = 2
    t_span: float = 10.0
    test_horizon: float = 10.0
    regimes: dict = regimes(201, 41)

    @property
    def params(self):
        return {"a": self.a, "c": self.c}

    def f(self, x, xp):
        prey, pred = x[..., 0], x[..., 1]
        return xp.stack([self.a * prey - prey * pred, prey * pred - self.c * pred], -1)

    def invariant(self, x: np.ndarray) -> np.ndarray:
        """V(x, y) = x - c ln x + y - a ln y, shape (...,)."""
        return x[..., 0] - self.c * np.log(x[..., 0]) + x[..., 1] - self.a * np.log(x[..., 1])

    def sample_initial(self, rng, n):
        # Orbits around the equilibrium (3, 1.5), neither collapsing to it nor reaching extreme populations.
        return np.stack([rng.uniform(1.0, 2.5, n), rng.uniform(0.5, 1.2, n)], -1)
