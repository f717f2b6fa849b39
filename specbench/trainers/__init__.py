"""The registry of trainers: name -> class. Adding a built-in trainer is one module (or class) and one line here;
a user's own trainer comes in through an entry point or a plugin module (specbench.registry). What a trainer is in
the comparison (`role`) and how it is tuned (`tuning_grid`) it declares itself; every list below derives from them.
"""
from __future__ import annotations

from specbench.errors import Diverged
from specbench.registry import Registry
from specbench.trainers.base import Trainer
from specbench.trainers.solver import AdjointDopri5, BackpropDopri5, BackpropRK4
from specbench.trainers.spectral import Spectral, SpectralTwoStage
from specbench.trainers.torchode_solver import TorchodeAdjoint, TorchodeDopri5

TRAINERS: Registry = Registry("trainer", "specbench.trainers", "specbench.trainers.base.Trainer", {
    "spectral": Spectral,
    "spectral-2stage": SpectralTwoStage,
    "backprop-rk4": BackpropRK4,
    "backprop-dopri5": BackpropDopri5,
    "adjoint-dopri5": AdjointDopri5,
    "torchode-dopri5": TorchodeDopri5,
    "torchode-adjoint": TorchodeAdjoint,
})


def get_trainer(name: str) -> type[Trainer]:
    return TRAINERS.get_class(name)


def with_role(*roles: str) -> list[str]:
    """Names of the registered trainers whose role is one of `roles`, in registry order."""
    return [name for name, cls in TRAINERS.items() if cls.role in roles]


def role_of(name: str) -> str | None:
    """The role of trainer `name`, or None for a name this process does not know (a plugin not loaded)."""
    return TRAINERS[name].role if name in TRAINERS else None


def candidate() -> str:
    """The method under test: the one trainer whose role is "candidate"."""
    names = with_role("candidate")
    return names[0] if names else ""


__all__ = ["TRAINERS", "Diverged", "Trainer", "candidate", "get_trainer", "role_of", "with_role"]
