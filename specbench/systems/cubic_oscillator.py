"""Damped cubic oscillator of the neural-ODE literature: dy/dt = (y**3) @ A, y a row vector,
A = [[-0.1, 2.0], [-2.0, -0.1]], initial states near (2, 0) (torchdiffeq's `ode_demo.py`)."""
from __future__ import annotations

from dataclasses import dataclass

from specbench.systems.base import System, const, regimes

A = [[-0.1, 2.0], [-2.0, -0.1]]


@dataclass
class CubicOscillator(System):
    name: str = "cubic-oscillator"
    dim: int = 2
    t_span: float = 10.0
    test_horizon: float = 10.0
    # dt = 0.025 as in torchdiffeq's demo: near amplitude 2 an orbit turns in ~0.5 time units
    regimes: dict = regimes(401, 81)

    @property
    def params(self):
        return {"A": A}

    def f(self, x, xp):
        return (x ** 3) @ const(A, x)

    def sample_initial(self, rng, n):
        return [2.0, 0.0] + rng.uniform(-0.25, 0.25, size=(n, 2))
