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


def rates(data) -> list[tuple[int, int]]:
    """(k, j): hidden state j is the rate of output k (the model's structure says x_i' = x_j of the state i that
    output k measures: a velocity), for each such hidden state of `data` (a dataset in the general form)."""
    runs = data.trajectories("train")
    outputs = list(data.outputs if data.outputs is not None else range(data.system.dim))
    _, equals = parse_structure(data.system.model.get("structure"), data.system.dim,
                                0 if runs[0].u is None else runs[0].u.shape[1])
    return [(outputs.index(i), int(j)) for i, j in enumerate(equals) if j >= 0 and i in outputs and j not in outputs]


def hidden_start(data, run, t: np.ndarray, hidden: list[int], scales: dict[str, np.ndarray]) -> np.ndarray:
    """The first guess every trainer starts the hidden states of training trajectory `run` from, at times t:
    (len(t), hidden). A hidden state the structure makes an output's rate (`rates`) starts at that output's finite
    differences, read at t (as Forgione and Piga started EMPS's velocity); any other at its scale mean, as nothing
    says more of it."""
    out = np.tile(scales["mean"][hidden], (len(t), 1))
    for k, j in rates(data):
        mid = (run.t[1:] + run.t[:-1]) / 2
        out[:, hidden.index(j)] = np.interp(t, mid, np.diff(run.y[:, k]) / np.diff(run.t))
    return out


def general_scales(data) -> dict[str, np.ndarray]:
    """`data_scales` of a dataset in the general form (`specbench.systems.datasets.Dataset.trajectories`): each measured
    state's from its samples over every training trajectory, and the inputs' mean and std ("input_mean",
    "input_std") where there are inputs. A hidden state is never measured, so the data do not say its size: it is
    scaled like an average output (their mean mean, std and derivative std), and the learned field is free to use
    any size for it; unless the system's model structure says it is an output's derivative (below)."""
    runs = data.trajectories("train")
    y = np.concatenate([r.y for r in runs])
    dydt = np.concatenate([np.diff(r.y, axis=0) / np.diff(r.t)[:, None] for r in runs])
    tiny = 1e-8
    measured = {"mean": y.mean(0), "std": y.std(0) + tiny, "deriv_std": dydt.std(0) + tiny}
    outputs = list(data.outputs if data.outputs is not None else range(data.system.dim))
    scales = {}
    for name, values in measured.items():
        full = np.full(data.system.dim, values.mean())
        full[outputs] = values
        scales[name] = full
    # A hidden state the model's structure knows to be an output's derivative (x_i' = x_J: a velocity) is measured
    # through it: its scales are that derivative's (the finite differences' mean and std, theirs for its own rate)
    for k, j in rates(data):
        scales["mean"][j], scales["std"][j] = dydt[:, k].mean(), measured["deriv_std"][k]
        # its own rate: the differences of the rates, at the midpoints of the samples (any spacing)
        accel = [np.diff(np.diff(r.y[:, k]) / np.diff(r.t)) / ((r.t[2:] - r.t[:-2]) / 2) for r in runs
                 if len(r.t) > 2]
        if accel:
            scales["deriv_std"][j] = np.concatenate(accel).std() + tiny
    if runs[0].u is not None:
        u = np.concatenate([r.u for r in runs])
        scales["input_mean"], scales["input_std"] = u.mean(0), u.std(0) + tiny
    return scales


def parse_structure(structure, dim: int, n_inputs: int) -> tuple[np.ndarray, np.ndarray]:
    """A known model structure (a system's `model["structure"]`) as (sees, equals): sees (dim, dim + n_inputs) 0/1,
    what each state's learned derivative may depend on, and equals (dim,), the state each derivative is known to
    equal (-1 where it is learned). `structure` lists, per state, its derivative's dependencies ("x0", "x1", ...
    for states, "u0", ... for inputs) or "=xJ" for a derivative that is x_J itself (position' = velocity); None: a
    black box, every derivative depending on everything. A ValueError names what is wrong."""
    sees, equals = np.ones((dim, dim + n_inputs)), np.full(dim, -1)
    if structure is None:
        return sees, equals
    names = [f"x{k}" for k in range(dim)] + [f"u{k}" for k in range(n_inputs)]
    if len(structure) != dim:
        raise ValueError(f"model structure: {len(structure)} entries for {dim} states")
    for i, entry in enumerate(structure):
        if isinstance(entry, str):
            if not (entry.startswith("=") and entry[1:] in names[:dim]):
                raise ValueError(f"model structure of x{i}: {entry!r} is not '=xJ' for a state J")
            equals[i], sees[i] = names.index(entry[1:]), 0
            continue
        unknown = [d for d in entry if d not in names]
        if unknown or not entry:
            raise ValueError(f"model structure of x{i}: {unknown[0] if unknown else 'nothing'!r} is not one of "
                             f"{', '.join(names)}")
        sees[i] = [name in entry for name in names]
    return sees, equals


class Masked(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask: the connections a known structure rules out
    are absent (their weights get no gradient and never act)."""

    def __init__(self, mask: np.ndarray):
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.float32))

    @property
    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, h):
        return nn.functional.linear(h, self.masked_weight, self.bias)


class VectorField(nn.Module):
    """f_theta(x) = deriv_std * MLP((x - mean) / std): an MLP on normalised states, output in state units/time;
    for a driven system (scales with "input_mean" and "input_std") f_theta(x, u), the MLP fed the normalised input
    beside the state.

    With a known `structure` (`parse_structure`) each learned derivative has its own `width` hidden units per
    layer, connected only to what it depends on (the MLP's layers masked block by block: a network for each
    state, evaluated as one), and a derivative known to equal a state is that state. So a structured field has
    `width` hidden units per layer for each learned derivative (the tanks: 2 x 64, about twice the black box's
    weights that act; EMPS: 64), and its weights start as nn.Linear's do for the whole layer's fan-in (the masked
    ones never act). The default is the plain black box.

    `forward(t, x, u=None)` follows torchdiffeq's convention; x has shape (..., state), u (..., input). `nfe`
    counts forward calls: how many network evaluations (each a sequential step for a solver) a training iteration
    needs.
    """

    def __init__(self, dim: int, scales: dict[str, np.ndarray], width: int = 64, depth: int = 2,
                 activation: str = "tanh", structure=None):
        super().__init__()
        act = {"tanh": nn.Tanh, "softplus": nn.Softplus, "silu": nn.SiLU}[activation]
        self.n_inputs = len(scales["input_mean"]) if "input_mean" in scales else 0
        layers, n_in = [], dim + self.n_inputs
        if structure is None:  # the black box: its layers, weights and state dict as they always were
            for _ in range(depth):
                layers += [nn.Linear(n_in, width), act()]
                n_in = width
            layers.append(nn.Linear(n_in, dim))
        else:
            if depth < 1:
                raise ValueError("a model with a structure needs depth >= 1 (its derivatives' own hidden layers)")
            sees, equals = parse_structure(structure, dim, self.n_inputs)
            learned = np.flatnonzero(equals < 0)
            block = np.repeat(learned, width)  # the state each hidden unit serves
            mask = sees[block]
            for _ in range(depth):
                layers += [Masked(mask), act()]
                mask = (block[:, None] == block[None, :]).astype(float)
            layers.append(Masked((np.arange(dim)[:, None] == block[None, :]).astype(float)))
            self.register_buffer("copied", torch.as_tensor(equals >= 0, dtype=torch.float32))
            self.register_buffer("source", torch.as_tensor(np.where(equals >= 0, equals, 0)))
        self.copies = structure is not None and bool((equals >= 0).any())  # some x_i' = x_J
        self.net = nn.Sequential(*layers)
        # an input-free field has no input buffers: its weights and state dict are as they always were
        for name in ("mean", "std", "deriv_std") + (("input_mean", "input_std") if self.n_inputs else ()):
            self.register_buffer(name, torch.as_tensor(scales[name], dtype=torch.float32))
        self._calls = [0]  # a list: counting must not go through nn.Module.__setattr__ (2 us) on every call

    @property
    def nfe(self) -> int:
        return self._calls[0]

    def forward(self, t, x, u=None):
        self._calls[0] += 1
        return self.known(x, self.deriv_std * self.net(self.normalised(x, u)))

    def known(self, x, f):
        """f with the derivatives the structure knows (x_i' = x_J) put in."""
        if not self.copies:
            return f
        return f * (1 - self.copied) + x[..., self.source] * self.copied

    def normalised(self, x, u):
        """The network's input: the normalised state, and beside it the normalised input of a driven field."""
        h = (x - self.mean) / self.std
        if self.n_inputs:
            h = torch.cat([h, (u - self.input_mean) / self.input_std], -1)
        return h

    def evaluate(self, t, x, u=None):
        """`forward`'s operations in its order, so its numbers, calling each layer's own forward instead of going
        through nn.Module's call machinery (there are no hooks to call), and not counted in `nfe`: for the common
        metric's rollouts (specbench.numerics.metric), where that machinery was a fifth of an evaluation of the field.
        Training calls `forward`, so its times do not move."""
        h = self.normalised(x, u)
        for layer in self.net:
            h = layer.forward(h)
        return self.known(x, self.deriv_std * h)


def build_model(dim: int, scales, model_config: dict, seed: int) -> VectorField:
    """The network for this seed: torch's RNG is seeded here so every trainer starts from identical weights."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return VectorField(dim, scales, **model_config)
    finally:
        torch.random.set_rng_state(gen_state)
