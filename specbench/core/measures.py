"""The named measures every reader of a record uses: the report, the studies, the gate and asv import them from
here, so one claim never gets two definitions.

- time to target: the **first crossing**, the training seconds at the first evaluation at or below the target
  (docs/design.md, "Measurement protocol"): the rule a practitioner uses (early stopping keeps the best model), the one
  AlgoPerf counts, and the paper's "reaching". The protocol keeps the best checkpoint by the common metric, and the
  test errors (C2) are that model's, so one model is judged once.
- sustained time: from the first evaluation after which the metric stays at or below the target to the end of the
  budget; the measure of stability, shown beside the time to target ("C1 kept").
- time per iteration: the median training step after the first (`step_seconds`); records made before it existed
  fall back to training seconds over iterations.
- peak memory: what the trainer kept at setup plus its peak growth during training, for every trainer. C3 is
  about what a method must hold to train, and a factor built once at setup is held for the whole run.
- network evaluations per iteration: `nfe_per_iteration`, the sequential depth an iteration needs (C4).
- a sweep's wall time (`wall_time`): where its runs' wall time went on their workers (`Record.wall`), and its
  overhead, that wall time over the training time it bought (the budgets): 1 would be a harness that costs nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from specbench.core.records import WALL_PARTS, Record


def judged(r: Record) -> bool:
    """Whether the run left a model to judge: it ended its budget, or it kept a best checkpoint before it diverged
    (early stopping keeps that model too). A run that failed, timed out, or diverged before a record kept its best
    checkpoint (schema 1, or before the rule) left none."""
    return r.ok or r.best_checkpoint is not None


def time_to_target(r: Record, key: str | None = None) -> float | None:
    """The first crossing of the record's target (or of `times_to_targets[key]`); None when not reached or when
    the run left no model to judge."""
    if not judged(r):
        return None
    return r.time_to_target_s if key is None else r.times_to_targets.get(key)


def sustained_time(r: Record, key: str | None = None) -> float | None:
    """The sustained time to the record's target (or to the target `key`); None as for `time_to_target`, and for a
    run that did not train to the end of its budget."""
    if not judged(r):
        return None
    times = r.sustained_times or {}
    return r.sustained_s if key is None else times.get(key)


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
    """The test MSE of the model judged (the best checkpoint); +inf where that model cannot be rolled out over the
    test horizon (it blows up on the held-out states: infinitely bad, not missing); None where the run left no
    model."""
    if not judged(r):
        return None
    return r.test_mse if r.test_mse is not None else math.inf


def nfe(r: Record) -> float | None:
    return r.nfe_per_iteration


def budget_s(r: Record) -> float:
    """The training seconds the run was given (what a baseline that never arrived is bounded by)."""
    return r.budget_s


LOST = "lost"  # wall time of runs that ended without a record of their own (crashed, timed out): their total only


@dataclass(frozen=True)
class WallTime:
    """Where the wall time of a set of runs went, over those that recorded it (`timed`): seconds by part
    (WALL_PARTS, then LOST), which sum to `total`; the budgets of those runs; and the runs with no breakdown (made
    before records kept one), left out."""

    timed: int
    untimed: int
    parts: dict
    total: float
    budget_s: float  # the sum of the runs' budget_s

    @property
    def overhead(self) -> float | None:
        """Wall time on the workers over the training time bought: a sweep on W workers takes about this times
        its budgets / W."""
        return self.total / self.budget_s if self.budget_s else None


def wall_time(records: list[Record]) -> WallTime:
    """The runs' wall time, summed by part."""
    timed = [r for r in records if r.wall and "total" in r.wall]
    parts = {p: sum(r.wall.get(p, 0.0) for r in timed) for p in WALL_PARTS}
    parts[LOST] = sum(r.wall["total"] for r in timed if not set(r.wall) & set(WALL_PARTS))
    return WallTime(len(timed), len(records) - len(timed), parts, sum(r.wall["total"] for r in timed),
                    sum(budget_s(r) for r in timed))
