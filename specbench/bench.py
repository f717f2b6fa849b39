"""What the asv suite (benchmarks/) measures, kept in the library so the suite stays thin.

The parameter lists can be narrowed by environment variables, so CI can smoke-run a corner of the suite:
SPECBENCH_ASV_SYSTEMS, SPECBENCH_ASV_TRAINERS (comma-separated names), SPECBENCH_ASV_BUDGET (training seconds of
each run behind the track_* benchmarks, default 3).
"""
from __future__ import annotations

import os

from specbench.data import make_dataset
from specbench.errors import UsageError
from specbench.job import make_job
from specbench.protocol import run_job
from specbench.systems import SYSTEMS, get_system
from specbench.trainers import TRAINERS, get_trainer
from specbench.trainers.base import Trainer


def _names(var: str, valid) -> list[str]:
    """The names in environment variable `var` (all of `valid` when it is unset); an unknown name is an error,
    never a silent fall-back to the whole suite."""
    chosen = [n for n in os.environ.get(var, "").split(",") if n]
    bad = [n for n in chosen if n not in valid]
    if bad:
        raise UsageError(f"{var}: unknown {', '.join(bad)}; valid: {', '.join(valid)}")
    return chosen or list(valid)


def systems() -> list[str]:
    return _names("SPECBENCH_ASV_SYSTEMS", SYSTEMS)


def trainers() -> list[str]:
    return _names("SPECBENCH_ASV_TRAINERS", TRAINERS)


def threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def make_trainer(system: str, trainer: str, seed: int = 0, device: str = "cpu") -> Trainer:
    """A trainer built as `specbench run --preset quick` builds it (tuned settings, dense data)."""
    import torch

    torch.set_num_threads(threads())
    sys_ = get_system(system)
    data = make_dataset(sys_, "dense", 0.0, seed)
    job = make_job(system, trainer, "dense", seed, budget_s=1.0, device=device, threads=threads())
    return get_trainer(trainer)(sys_, data, job.config, seed, device)


def short_runs(budget_s: float | None = None) -> dict[tuple[str, str], dict]:
    """One protocol run per (system, trainer) in the parameter lists: the records behind the track benchmarks."""
    budget_s = float(budget_s or os.environ.get("SPECBENCH_ASV_BUDGET", 3.0))
    return {(s, t): run_job(make_job(s, t, "dense", 0, budget_s=budget_s, threads=threads()))
            for s in systems() for t in trainers()}
