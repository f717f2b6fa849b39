"""The one interface every trainer has: build from (system, dataset, config, seed, device), then `step()`."""
from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch

from specbench.core.errors import Diverged, UsageError
from specbench.numerics.vector_field import VectorField, build_model, data_scales, general_scales, hidden_start
from specbench.systems import System
from specbench.systems.datasets import Dataset
from specbench.trainers.settings import (Declaration, Setting, Shape, by_name, check, defaults_of, from_plain,
                                         grid_of, validate)


class Trainer:
    """Learns a VectorField from a Dataset. `step()` is one optimisation iteration and returns the trainer's own
    loss (never compared across trainers); `model` is the learned vector field.

    A subclass declares its `settings` (`specbench.trainers.settings`: every setting it reads, each with its type,
    default, valid range, tuning grid, how tuning extends that grid, and meaning); `defaults` (setting -> default,
    written into every record) and `tuning_grid` (setting -> values) are derived from them. A subclass may instead
    give plain `defaults` and/or `tuning_grid` dicts, as a plugin may: a setting its parent declares keeps its
    declaration (type, range, scale) with the new default and grid, and a new one takes its type from its default
    (`settings.from_plain`)."""

    summary: ClassVar[str] = ""
    settings: ClassVar[Declaration] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    # What the trainer is in the comparison: the method under test ("candidate"), a variant of it that isolates
    # one of its parts ("ablation"), or a method it is compared against ("baseline"). Verdict columns, colours,
    # tuning and the studies read it; no list of names elsewhere.
    role: ClassVar[str] = "baseline"
    # The space `specbench tune` searches for this trainer: setting -> values, from `settings`. Every trainer is
    # tuned on the same number of points drawn from it (specbench.running.tuning.POINTS; a balanced design, each value
    # of each setting about equally often), by successive halving. A value may be a table of settings that go together
    # (tolerances: a `Joint` axis).
    tuning_grid: ClassVar[dict[str, list]] = {}
    solves_ode: ClassVar[bool] = False
    # What the trainer can learn from beyond full states of an input-free system on one shared grid
    # (specbench.systems.datasets.NEEDS: "inputs", "hidden" states, "irregular" times). Only what its code truly does: a
    # job whose data need more is recorded "n/a" with the reason (`cannot_use`), never run on a part of its data.
    learns_from: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        if "settings" in own and ("defaults" in own or "tuning_grid" in own):
            raise TypeError(f"{cls.__name__}: declare settings, or plain defaults/tuning_grid dicts, not both")
        if "settings" not in own:
            cls.settings = from_plain(cls.settings, own.get("defaults"), own.get("tuning_grid"))
        validate(cls.settings, cls.__name__)
        cls.defaults = defaults_of(cls.settings)
        cls.tuning_grid = grid_of(cls.settings)

    def __init__(self, system: System, data: Dataset, config: dict | None = None, seed: int = 0,
                 device: str = "cpu"):
        why = cannot_use(type(self), data)
        if why:
            raise UsageError(why)
        self.system, self.data, self.seed = system, data, seed
        self.device = torch.device(device)
        self.config = resolve_config(type(self), config or {})
        # Data in the general form (specbench.systems.datasets.NEEDS) are read trajectory by trajectory; a trajectory's
        # observations, for the limits of settings, are the fewest of any
        self.general = bool(data.needs)
        runs = data.trajectories("train")
        self.data_shape = Shape(len(runs), min(len(r.t) for r in runs)) if self.general else \
            Shape(*data.train.shape[:2])
        self.scales = general_scales(data) if self.general else data_scales(data.t, data.train)
        model_config = {**system.model, **self.config.get("model", {})}
        self.config["model"] = model_config
        self.model: VectorField = build_model(system.dim, self.scales, model_config, seed).to(self.device)
        # Batch draws and other randomness of the trainer itself, apart from the weights' initialisation.
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.iteration = 0

    def used(self, name: str):
        """Setting `name` as this trainer runs it on its data: its declared limit applied (a segment at most the
        observations, a batch of every element "all"), the rule tuning knows too."""
        return by_name(self.settings)[name].runs_as(self.config[name], self.data_shape, self.config)

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

    def hidden_start(self, run, t: np.ndarray, hidden: list[int]) -> np.ndarray:
        """The hidden states' first guess on training trajectory `run` at times t, (len(t), hidden), the same for
        every trainer (`specbench.numerics.vector_field.hidden_start`: an output's rate where the structure says a
        hidden state is one, else the scale mean)."""
        return hidden_start(self.data, run, np.asarray(t, dtype=float), hidden, self.scales)

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

    def initial_states(self) -> np.ndarray | None:
        """The trainer's own estimate of each training trajectory's initial state, (traj, state) in float64, in the
        order of `data.trajectories("train")`; None where it holds none. A trainer that learns from hidden states
        learns these values, and the common metric simulates each training trajectory from their hidden
        components (specbench.numerics.metric)."""
        return None


SCHEDULES = ("constant", "cosine")  # learning-rate schedules, one mechanism for every trainer (Trainer.anneal)
# The settings every built-in family has. A learning rate of 0 is valid (a step that leaves the weights, for
# checks); tuning stays where one is sane.
LR = Setting("lr", 1e-2, "Adam learning rate", low=0.0, reach=(1e-5, 1.0), grid=(3e-3, 1e-2, 3e-2), scale="log")
SCHEDULE = Setting("schedule", "constant", "learning-rate schedule over the budget (Trainer.anneal)", str,
                   choices=SCHEDULES, grid=SCHEDULES)


def cannot_use(cls: type[Trainer], data: Dataset) -> str | None:
    """Why trainer `cls` cannot learn from `data` (one line), or None when it can."""
    missing = sorted(data.needs - cls.learns_from)
    if not missing:
        return None
    words = {"inputs": "inputs", "hidden": "hidden states", "irregular": "irregular times"}
    return (f"{cls.__name__} cannot learn from {' or '.join(words[m] for m in missing)} "
            f"(it learns from: {', '.join(words[w] for w in sorted(cls.learns_from)) or 'full states on one grid, no input'})")


def resolve_config(cls: type[Trainer], config: dict, who: str | None = None) -> dict:
    """The trainer's defaults updated with `config`; an unknown setting or an invalid value is a UsageError (one
    line naming the valid settings or values), not silently ignored or clamped."""
    check(cls.settings, config, who or cls.__name__)
    return {**cls.defaults, **config}
