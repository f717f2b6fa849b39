"""`specbench tune`: one procedure for every trainer, writes the settings presets read.

For each system and trainer, every point of the trainer's own `tuning_grid` (six points for the built-in solvers:
the learning rate against one knob that matters for that family; twelve for spectral) is trained for the same budget
on each of `seeds` tuning seeds no report uses (100, 101, ...). The winner is the point that ended the budget at or
below the system's target on the most seeds, then the one with the shortest median time to target (sustained; a seed
that did not keep it counts as never), then the lowest median final common metric. One seed was the knife edge
DESIGN.md warns about: on cubic-oscillator a learning rate chosen on seed 100 alone held the target on seeds 0-2
later than the one it displaced (results/spectral-change). The winners go to the tuned-settings file (`--settings`,
default `tuned.toml` in the tuning directory; the package's own file only when named), each entry with the score
that won, its budget and date, and every tuning record stays in the tuning directory as evidence.
"""
from __future__ import annotations

import datetime
import itertools
import math
import statistics
import sys
from pathlib import Path

import tomli_w

from specbench.errors import UsageError
from specbench.executors import Local
from specbench.io import write_text_atomic
from specbench.job import make_job
from specbench.plugins import get_trainer
from specbench.presets import read_toml
from specbench.records import Record
from specbench.runner import run_jobs

TUNING_SEED = 100


def grid(trainer: str) -> list[dict]:
    """The points of the trainer's own tuning grid (the product of its setting -> values)."""
    axes = get_trainer(trainer).tuning_grid
    if not axes:
        raise UsageError(f"trainer {trainer!r} declares no tuning_grid")
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def score(records: list[Record]) -> tuple[int, float, float]:
    """Lower is better, over a point's runs on the tuning seeds: (how many did not end the budget at or below the
    target, median time to target, median final metric), a missing time or metric counting as infinite."""
    finals = [r.final_train_loss if r.final_train_loss is not None else math.inf for r in records]
    times = [r.time_to_target_s if r.time_to_target_s is not None else math.inf for r in records]
    missed = sum(final > r.target_loss for final, r in zip(finals, records))
    return missed, statistics.median(times), statistics.median(finals)


def tune(systems: list[str], trainers: list[str], budget_s: float, out: Path, threads: int | None,
         settings_path: Path, executor=None, replace: bool = False, seeds: int = 1) -> dict:
    executor = executor or Local()
    settings = read_settings(settings_path)  # a broken file is said now, not after hours of tuning
    threads = threads or executor.default_threads()
    jobs = []
    for system, trainer in itertools.product(systems, trainers):
        for point in grid(trainer):
            for seed in range(TUNING_SEED, TUNING_SEED + seeds):
                # the quick preset's cadence and targets; the grid point over the trainer's defaults, nothing tuned
                job = make_job(system, trainer, "dense", seed, budget_s=budget_s, threads=threads)
                job.config = point
                jobs.append(job)
    # One directory per grid point keeps records apart (record names do not carry the config).
    tags = ["_".join(f"{k}={v}" for k, v in job.config.items()) for job in jobs]
    placed = [(job, out / f"{job.system}__{job.trainer}__{tag}" / "runs" / job.name) for job, tag in zip(jobs, tags)]
    records: dict[tuple, list[Record]] = {}
    for job, tag, record in zip(jobs, tags, run_jobs(placed, executor=executor, replace=replace)):
        records.setdefault((job.system, job.trainer, tag), []).append(record)
    today = datetime.date.today().isoformat()
    for system, trainer in itertools.product(systems, trainers):
        candidates = [(score(rs), tag, rs[0]) for (s, t, tag), rs in records.items() if (s, t) == (system, trainer)]
        (_, ttt, final), _, best = min(candidates, key=lambda c: c[0])
        point = {k: best.config[k] for k in grid(trainer)[0]}
        settings.setdefault(system, {})[trainer] = {**point, "tuned_time_to_target_s": ttt if ttt < math.inf
                                                    else -1.0, "tuned_final_metric": final,
                                                    "tuned_budget_s": budget_s, "tuned_seeds": seeds,
                                                    "tuned_on": today}
        print(f"{system} / {trainer}: {point} (time to target {ttt:.3g} s, final metric {final:.3g})",
              file=sys.stderr)
    return settings


HEADER = f"""\
# Written by `specbench tune` (specbench/tune.py): the best point of each trainer's grid on tuning
# seeds {TUNING_SEED}, {TUNING_SEED + 1}, ..., dense regime. tuned_* keys say how each entry was chosen
# (its budget per point, its number of tuning seeds, absent: one, its date, the median scores that won;
# tuned_time_to_target_s = -1: the winner's median did not reach the target); trainers ignore them.

"""


def read_settings(path: Path) -> dict:
    """The tuned settings already in `path` (empty when there is none); a file that is not TOML is a
    UsageError."""
    return read_toml(path) if path.exists() and path.stat().st_size else {}


def write_tuned(settings: dict, path: Path) -> None:
    """The tuned settings as TOML (tomli_w), systems and trainers sorted, under a header that says what they are."""
    ordered = {system: {trainer: settings[system][trainer] for trainer in sorted(settings[system])}
               for system in sorted(settings)}
    write_text_atomic(path, HEADER + tomli_w.dumps(ordered))
