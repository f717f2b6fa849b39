"""What the asv suite (benchmarks/) measures, kept in the library so the suite stays thin.

Environment variables narrow the suite, so CI can smoke-run a corner of it: SPECBENCH_ASV_SYSTEMS and
SPECBENCH_ASV_TRAINERS (comma-separated names) its parameter lists, and SPECBENCH_ASV_BUDGET_S, what `--budget` is
to the other commands: the training seconds of each protocol run behind the memory tracks, every system and
trainer alike (default BUDGET_S, 1 s: the training peak comes in the first iterations).
"""
from __future__ import annotations

import math
import os

import torch

from specbench.core.defaults import MAX_BUDGET_S, default_threads, run_limit
from specbench.core.errors import UsageError
from specbench.core.records import Record
from specbench.registries import SYSTEMS, TRAINERS
from specbench.running.executors import run_in_subprocess
from specbench.running.job import make_job
from specbench.running.work_measures import build_trainer, work
from specbench.trainers.base import Trainer

BUDGET_S = 1.0  # training seconds of each memory run where SPECBENCH_ASV_BUDGET_S does not say
BUDGET_VARIABLE = "SPECBENCH_ASV_BUDGET_S"
OLD_BUDGET_VARIABLE = "SPECBENCH_ASV_BUDGET"  # its name before issue 35: refused, not silently ignored


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
    return build_trainer(make_job(system, trainer, "dense", seed, budget_s=BUDGET_S, device=device,
                                  threads=threads()))[0]


def memory_budget_s() -> float:
    """The training seconds of each memory run: SPECBENCH_ASV_BUDGET_S, else BUDGET_S; a value that is not a
    positive number of at most a week is an error, never a silent default."""
    if OLD_BUDGET_VARIABLE in os.environ:
        raise UsageError(f"{OLD_BUDGET_VARIABLE} is now {BUDGET_VARIABLE} (training seconds of each memory run)")
    text = os.environ.get(BUDGET_VARIABLE, "")
    if not text:
        return BUDGET_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (0 < seconds <= MAX_BUDGET_S):
        raise UsageError(f"{BUDGET_VARIABLE} must be a positive number of seconds (at most {MAX_BUDGET_S:g}), "
                         f"got {text!r}")
    return seconds


def work_runs() -> dict[tuple[str, str], dict]:
    """The work measures (`specbench.running.work_measures`: iteration-budgeted, one thread, deterministic) per (system,
    trainer) in the parameter lists: the outcome tracks."""
    return {(s, t): work(s, t) for s in systems() for t in trainers()}


def memory_runs(budget_s: float | None = None) -> dict[tuple[str, str], Record]:
    """One protocol run per (system, trainer), each in a fresh process as `specbench run` makes it, so its
    memory is its own: the records behind the memory tracks (`specbench.core.measures.peak_memory`)."""
    budget_s = budget_s or memory_budget_s()
    return {(s, t): run_in_subprocess(make_job(s, t, "dense", 0, budget_s=budget_s, threads=threads()),
                                      run_limit(budget_s))
            for s in systems() for t in trainers()}
