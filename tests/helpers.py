"""Shared helpers for the tests: small datasets and a true vector field as a module."""
import torch
from torch import nn

from specbench.data import generate
from specbench.plugins import get_system


class TrueField(nn.Module):
    """The system's own right-hand side in the VectorField calling convention (t, x)."""

    def __init__(self, system):
        super().__init__()
        self.system = system
        self.register_buffer("anchor", torch.zeros(()))

    def forward(self, t, x):
        return self.system.rhs_torch(x)


def dataset(name="oscillator", regime="dense", noise=0.0, seed=0, **params):
    system = get_system(name, **params)
    return system, generate(system, regime, noise, seed)
