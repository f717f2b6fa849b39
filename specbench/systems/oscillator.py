"""Linear damped harmonic oscillator x'' + 2 zeta omega x' + omega^2 x = 0, state (x, x').

It has a closed-form solution, used for the ground truth and in tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specbench.systems.base import System, regimes


@dataclass
class Oscillator(System):
    zeta: float = 0.1
    omega: float = 1.0
    name: str = "oscillator"
    dim: int = 2
    t_span: float = 10.0
    test_horizon: float = 10.0
    regimes: dict = regimes(101, 21)

    @property
    def params(self):
        return {"zeta": self.zeta, "omega": self.omega}

    def f(self, x, xp):
        pos, vel = x[..., 0], x[..., 1]
        return xp.stack([vel, -2 * self.zeta * self.omega * vel - self.omega ** 2 * pos], -1)

    def sample_initial(self, rng, n):
        return rng.uniform(-2.0, 2.0, size=(n, 2))

    def exact(self, t, x0):
        # Underdamped (zeta < 1): x = e^{-a t} (A cos(wd t) + B sin(wd t)).
        a = self.zeta * self.omega
        wd = self.omega * np.sqrt(1 - self.zeta ** 2)
        A = x0[0]
        B = (x0[1] + a * x0[0]) / wd
        e, c, s = np.exp(-a * t), np.cos(wd * t), np.sin(wd * t)
        pos = e * (A * c + B * s)
        vel = e * ((-a * A + wd * B) * c + (-a * B - wd * A) * s)
        return np.stack([pos, vel], -1)
