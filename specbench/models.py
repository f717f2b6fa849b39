"""The vector-field network every trainer learns: the same architecture and initial weights per seed."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def data_scales(t: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-state mean and std of the observations y (n_traj, n_times, state), and std of their finite-difference
    time derivative: fixed input and output scales for the network, and loss weights, the same for all trainers."""
    flat = y.reshape(-1, y.shape[-1])
    dydt = np.diff(y, axis=1) / np.diff(t)[None, :, None]
    tiny = 1e-8
    return {"mean": flat.mean(0), "std": flat.std(0) + tiny,
            "deriv_std": dydt.reshape(-1, y.shape[-1]).std(0) + tiny}


class VectorField(nn.Module):
    """f_theta(x) = deriv_std * MLP((x - mean) / std): an MLP on normalised states, output in state units/time.

    `forward(t, x)` follows torchdiffeq's convention; x has shape (..., state). `nfe` counts forward calls: how
    many network evaluations (each a sequential step for a solver) a training iteration needs.
    """

    def __init__(self, dim: int, scales: dict[str, np.ndarray], width: int = 64, depth: int = 2,
                 activation: str = "tanh"):
        super().__init__()
        act = {"tanh": nn.Tanh, "softplus": nn.Softplus, "silu": nn.SiLU}[activation]
        layers, n_in = [], dim
        for _ in range(depth):
            layers += [nn.Linear(n_in, width), act()]
            n_in = width
        layers.append(nn.Linear(n_in, dim))
        self.net = nn.Sequential(*layers)
        for name in ("mean", "std", "deriv_std"):
            self.register_buffer(name, torch.as_tensor(scales[name], dtype=torch.float32))
        self._calls = [0]  # a list: counting must not go through nn.Module.__setattr__ (2 us) on every call

    @property
    def nfe(self) -> int:
        return self._calls[0]

    def forward(self, t, x):
        self._calls[0] += 1
        return self.deriv_std * self.net((x - self.mean) / self.std)

    def evaluate(self, t, x):
        """`forward`'s operations in its order, so its numbers, calling each layer's own forward instead of going
        through nn.Module's call machinery (there are no hooks to call), and not counted in `nfe`: for the common
        metric's rollouts (specbench.evaluate), where that machinery was a fifth of an evaluation of the field.
        Training calls `forward`, so its times do not move."""
        h = (x - self.mean) / self.std
        for layer in self.net:
            h = layer.forward(h)
        return self.deriv_std * h


def build_model(dim: int, scales, model_config: dict, seed: int) -> VectorField:
    """The network for this seed: torch's RNG is seeded here so every trainer starts from identical weights."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return VectorField(dim, scales, **model_config)
    finally:
        torch.random.set_rng_state(gen_state)
