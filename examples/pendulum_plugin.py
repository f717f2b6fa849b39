"""An example specbench plugin: one system and one trainer, written outside the package.

Use it with `--plugin examples/pendulum_plugin.py` on any command (`list`, `data`, `run`, `study`, `tune`,
`report`), with SPECBENCH_PLUGINS=examples/pendulum_plugin.py for asv, or install it as a distribution that
declares the entry points

    [project.entry-points."specbench.systems"]
    pendulum = "pendulum_plugin:Pendulum"
    [project.entry-points."specbench.trainers"]
    backprop-euler = "pendulum_plugin:BackpropEuler"

A plugin module names what it adds in `SYSTEMS` and `TRAINERS` (name -> class), like the package's registries.
"""
from __future__ import annotations

from dataclasses import dataclass

from specbench.systems.base import System, regimes
from specbench.trainers.solver import TorchdiffeqTrainer


@dataclass
class Pendulum(System):
    """A damped pendulum, theta'' + gamma theta' + (g / l) sin theta = 0, state (theta, theta')."""

    gamma: float = 0.2
    g_over_l: float = 1.0
    name: str = "pendulum"
    dim: int = 2
    t_span: float = 10.0
    test_horizon: float = 10.0
    target: float = 2e-2  # the system declares its own target; a preset may override it
    regimes: dict = regimes(101, 21)

    @property
    def params(self):
        return {"gamma": self.gamma, "g_over_l": self.g_over_l}

    def f(self, x, xp):
        theta, omega = x[..., 0], x[..., 1]
        return xp.stack([omega, -self.gamma * omega - self.g_over_l * xp.sin(theta)], -1)

    def sample_initial(self, rng, n):
        return rng.uniform([-2.0, -1.0], [2.0, 1.0], size=(n, 2))


class BackpropEuler(TorchdiffeqTrainer):
    """A trivial variant of a built-in baseline: backprop through explicit Euler with two steps per observation."""

    summary = "example plugin: torchdiffeq odeint, fixed-step Euler (2 steps per observation), backprop"
    role = "baseline"
    defaults = {**TorchdiffeqTrainer.defaults, "method": "euler", "steps_per_obs": 2}
    tuning_grid = {"lr": [1e-2, 3e-2], "segment_length": [10]}


SYSTEMS = {"pendulum": Pendulum}
TRAINERS = {"backprop-euler": BackpropEuler}
