"""What the asv suite (benchmarks/) measures, kept in the library so the suite stays thin.

The parameter lists can be narrowed by environment variables, so CI can smoke-run a corner of the suite:
SPECBENCH_ASV_SYSTEMS, SPECBENCH_ASV_TRAINERS (comma-separated names), SPECBENCH_ASV_BUDGET (training seconds of
each protocol run behind the memory tracks, default 1: the training peak comes in the first iterations).
"""
from __future__ import annotations

import os

import torch

from specbench.defaults import default_threads, run_limit
from specbench.errors import UsageError
from specbench.executors import run_in_subprocess
from specbench.job import make_job
from specbench.plugins import SYSTEMS, TRAINERS
from specbench.records import Record
from specbench.trainers.base import Trainer
from specbench.work import build_trainer, work


def _names(var: str, valid) -> list[str]:
    """The names in environment variable `var` (all of `valid` when it is unset); an unknown name is an error,
    never a silent fall-back to the whole suite."""
    chosen = [n for n in os.environ.get(var, "").split(",") if n]
    bad = [n for n in chosen if n not in valid]
    if bad:
        raise UsageError(f"{var}: unknown {', '.join(bad)}; valid: {', '.join(valid)}")
    return chosen or list(valid)


def systems() -> list[str]:
    return _names("SPECBENCH_ASV_SYSTEMS", SYSTEMS.names())


def trainers() -> list[str]:
    return _names("SPECBENCH_ASV_TRAINERS", TRAINERS.names())


threads = default_threads


def make_trainer(system: str, trainer: str, seed: int = 0, device: str = "cpu") -> Trainer:
    """A trainer built as `specbench run --preset quick` builds it (tuned settings, dense data)."""
    torch.set_num_threads(threads())
    return build_trainer(make_job(system, trainer, "dense", seed, budget_s=1.0, device=device,
                                  threads=threads()))[0]


def work_runs() -> dict[tuple[str, str], dict]:
    """The work measures (`specbench.work`: iteration-budgeted, one thread, deterministic) per (system, trainer)
    in the parameter lists: the outcome tracks."""
    return {(s, t): work(s, t) for s in systems() for t in trainers()}


def memory_runs(budget_s: float | None = None) -> dict[tuple[str, str], Record]:
    """One protocol run per (system, trainer), each in a fresh process as `specbench run` makes it, so its
    memory is its own: the records behind the memory tracks (`specbench.measures.peak_memory`)."""
    budget_s = float(budget_s or os.environ.get("SPECBENCH_ASV_BUDGET", 1.0))
    return {(s, t): run_in_subprocess(make_job(s, t, "dense", 0, budget_s=budget_s, threads=threads()),
                                      run_limit(budget_s))
            for s in systems() for t in trainers()}
