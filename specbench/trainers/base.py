"""The one interface every trainer has: build from (system, dataset, config, seed, device), then `step()`."""
from __future__ import annotations

import math
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
    # The space `specbench tune` searches for this trainer: setting -> values. Every trainer is tuned on the same
    # number of points drawn from it (specbench.tune.POINTS; a balanced design, each value of each setting about
    # equally often), by successive halving. A value may be a table of settings that go together (tolerances).
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
        if self.config.get("schedule", "constant") not in SCHEDULES:
            raise UsageError(f"unknown schedule {self.config['schedule']!r}; valid schedules: {', '.join(SCHEDULES)}")

    def anneal(self, fraction: float) -> None:
        """Set the learning rate for `fraction` of the budget's training time spent, by the trainer's `schedule`:
        "constant", or "cosine" decay from lr to 0 over the budget (Loshchilov and Hutter, SGDR, without restarts).
        The protocol calls it before every step; a run with no time budget (the work measures) keeps lr. Every
        parameter group of `self.optimizer` follows it, from the lr it started with."""
        optimizer = getattr(self, "optimizer", None)
        if self.config.get("schedule", "constant") == "constant" or optimizer is None:
            return
        factor = 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, fraction))))
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor

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


SCHEDULES = ("constant", "cosine")  # learning-rate schedules, one mechanism for every trainer (Trainer.anneal)
SCHEDULE = {"schedule": "constant"}  # the setting, in every built-in family's defaults


def resolve_config(cls: type[Trainer], config: dict) -> dict:
    """The trainer's defaults updated with `config`; an unknown key is an error, not silently ignored."""
    unknown = set(config) - set(cls.defaults) - {"model"}
    if unknown:
        raise UsageError(f"unknown settings for {cls.__name__}: {', '.join(sorted(unknown))}; "
                         f"valid: {', '.join(sorted(cls.defaults))}, model")
    return {**cls.defaults, **config}
