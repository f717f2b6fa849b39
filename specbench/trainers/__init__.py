"""The registry of trainers: name -> class. Adding a trainer is one module (or class) and one line here."""
from __future__ import annotations

from specbench.errors import Diverged, UsageError
from specbench.trainers.base import Trainer
from specbench.trainers.solver import AdjointDopri5, BackpropDopri5, BackpropRK4
from specbench.trainers.spectral import Spectral, SpectralTwoStage
from specbench.trainers.torchode_solver import TorchodeAdjoint, TorchodeDopri5

TRAINERS: dict[str, type[Trainer]] = {
    "spectral": Spectral,
    "spectral-2stage": SpectralTwoStage,
    "backprop-rk4": BackpropRK4,
    "backprop-dopri5": BackpropDopri5,
    "adjoint-dopri5": AdjointDopri5,
    "torchode-dopri5": TorchodeDopri5,
    "torchode-adjoint": TorchodeAdjoint,
}
HEADLINE = ["spectral", "backprop-rk4", "backprop-dopri5", "adjoint-dopri5"]


def get_trainer(name: str) -> type[Trainer]:
    if name not in TRAINERS:
        raise UsageError(f"unknown trainer {name!r}; valid trainers: {', '.join(TRAINERS)}")
    return TRAINERS[name]


__all__ = ["TRAINERS", "HEADLINE", "Diverged", "Trainer", "get_trainer"]
