"""The one interface every trainer has: build from (system, dataset, config, seed, device), then `step()`."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from specbench.data import Dataset
from specbench.errors import Diverged, UsageError
from specbench.models import VectorField, build_model, data_scales
from specbench.systems import System


class Trainer:
    """Learns a VectorField from a Dataset. `step()` is one optimisation iteration and returns the trainer's own
    loss (never compared across trainers); `model` is the learned vector field. Subclasses declare `defaults`:
    every setting they use, so that a run's config records all of them."""

    summary: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    # What the trainer is in the comparison: the method under test ("candidate"), a variant of it that isolates
    # one of its parts ("ablation"), or a method it is compared against ("baseline"). Verdict columns, colours,
    # tuning and the studies read it; no list of names elsewhere.
    role: ClassVar[str] = "baseline"
    # The grid `specbench tune` searches for this trainer: setting -> values, searched as their product. The
    # built-in solvers get six points, the learning rate against the one knob of their family; spectral twelve
    # (its grid says why).
    tuning_grid: ClassVar[dict[str, list]] = {}
    solves_ode: ClassVar[bool] = False

    def __init__(self, system: System, data: Dataset, config: dict | None = None, seed: int = 0,
                 device: str = "cpu"):
        self.system, self.data, self.seed = system, data, seed
        self.device = torch.device(device)
        self.config = resolve_config(type(self), config or {})
        self.scales = data_scales(data.t, data.train)
        model_config = {**system.model, **self.config.get("model", {})}
        self.config["model"] = model_config
        self.model: VectorField = build_model(system.dim, self.scales, model_config, seed).to(self.device)
        # Batch draws and other randomness of the trainer itself, apart from the weights' initialisation.
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.iteration = 0

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=torch.float32, device=self.device)

    def step(self) -> float:
        """One iteration; raises Diverged when it produced a non-finite loss or its solver failed."""
        try:
            loss = self._step()
        except AssertionError as exc:  # torchdiffeq's way of saying 'underflow in dt' or 'max_num_steps exceeded'
            raise Diverged(f"solver failed: {str(exc).splitlines()[0][:200]}") from None
        self.iteration += 1
        if not np.isfinite(loss):
            raise Diverged(f"non-finite loss at iteration {self.iteration}")
        return loss

    def _step(self) -> float:
        raise NotImplementedError


def resolve_config(cls: type[Trainer], config: dict) -> dict:
    """The trainer's defaults updated with `config`; an unknown key is an error, not silently ignored."""
    unknown = set(config) - set(cls.defaults) - {"model"}
    if unknown:
        raise UsageError(f"unknown settings for {cls.__name__}: {', '.join(sorted(unknown))}; "
                         f"valid: {', '.join(sorted(cls.defaults))}, model")
    return {**cls.defaults, **config}
