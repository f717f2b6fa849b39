"""The named measures every reader of a record uses: the report, the studies, the gate and asv import them from
here, so one claim never gets two definitions.

- time to target: the **sustained** time, the training seconds at the first evaluation from which the common
  metric stays at or below the target to the end of the budget (DESIGN.md, "Measurement protocol"); the first
  crossing is kept beside it. A run that dips below the target and climbs back has not reached it, so C1 and C2
  are judged on the same model: the one at the end of the budget.
- time per iteration: the median training step after the first (`step_seconds`); records made before it existed
  fall back to training seconds over iterations.
- peak memory: what the trainer kept at setup plus its peak growth during training, for every trainer. C3 is
  about what a method must hold to train, and a factor built once at setup is held for the whole run.
- network evaluations per iteration: `nfe_per_iteration`, the sequential depth an iteration needs (C4).
"""
from __future__ import annotations

import math

from specbench.records import Record


def sustained(curve: list, target: float) -> float | None:
    """Training seconds at the first evaluation of `curve` ([[seconds, iteration, metric], ...]) from which every
    later metric is at or below `target`; None when the last one is above it (or is missing)."""
    t = None
    for seconds, _, metric in reversed(curve):
        if metric is None or not math.isfinite(metric) or metric > target:
            break
        t = seconds
    return t


def first_crossing(curve: list, target: float) -> float | None:
    """Training seconds at the first evaluation at or below `target`, whatever came after."""
    return next((s for s, _, m in curve if m is not None and m <= target), None)


def time_to_target(r: Record, key: str | None = None) -> float | None:
    """The sustained time to the record's target (or to `times_to_targets[key]`); None when not reached or when
    the run did not end its budget with a model (diverged, failed)."""
    if not r.ok:
        return None
    return r.time_to_target_s if key is None else r.times_to_targets.get(key)


def first_time_to_target(r: Record) -> float | None:
    """The first crossing of the record's target, kept beside the sustained time."""
    if not r.ok:
        return None
    return r.first_crossing_s if r.first_crossings is not None else first_crossing(r.curve, r.target_loss)


def time_per_iteration(r: Record) -> float | None:
    """Seconds per training step: the median step after the first where recorded."""
    if r.step_seconds is not None:
        return r.step_seconds
    return r.train_seconds / r.iterations if r.iterations else None


def peak_memory(r: Record) -> float | None:
    """Bytes the trainer holds at its peak: what setup kept plus the peak growth during training."""
    if r.peak_memory_bytes is None:
        return None
    return float((r.setup_memory_bytes or 0) + r.peak_memory_bytes)


def test_mse(r: Record) -> float | None:
    return r.test_mse if r.ok else None


def nfe(r: Record) -> float | None:
    return r.nfe_per_iteration


def budget(r: Record) -> float:
    """The training seconds the run was given (what a baseline that never arrived is bounded by)."""
    return r.budget
