"""`specbench tune`: one procedure, the same effort for every trainer, writes the settings presets read.

For each system and trainer, every point of the trainer's own `tuning_grid` (six points each for the built-ins: the
learning rate against one knob that matters for that family) is trained for the same budget on a tuning seed no report uses (100). The
winner is the point with the shortest time to the system's target among those that end the budget at or below
it; then the fastest that crossed it (a first crossing on an unstable curve is the knife edge DESIGN.md warns
about); where none reaches it, the lowest final common metric. The winners go to
the tuned-settings file (`--settings`, default `tuned.toml` in the tuning directory; the package's own file only
when named), each entry with the score that won, its budget and date, and every tuning record stays in the tuning
directory as evidence.
"""
from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import datetime

from specbench.errors import UsageError
from specbench.executors import Local
from specbench.job import make_job
from specbench.presets import read_toml
from specbench.runner import run_jobs
from specbench.trainers import get_trainer

TUNING_SEED = 100


def grid(trainer: str) -> list[dict]:
    """The points of the trainer's own tuning grid (the product of its setting -> values)."""
    axes = get_trainer(trainer).tuning_grid
    if not axes:
        raise UsageError(f"trainer {trainer!r} declares no tuning_grid")
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def score(record: dict) -> tuple[int, float, float]:
    """Lower is better: (0 if the run ended at or below the target else 1, time to target, final metric)."""
    ttt = record.get("time_to_target_s")
    final = record.get("final_train_loss")
    final = final if final is not None else math.inf
    return (0 if final <= record["target_loss"] else 1, ttt if ttt is not None else math.inf, final)


def tune(systems: list[str], trainers: list[str], budget_s: float, out: Path, threads: int | None,
         settings_path: Path, executor=None, replace: bool = False) -> dict:
    executor = executor or Local()
    threads = threads or executor.default_threads()
    jobs = []
    for system, trainer in itertools.product(systems, trainers):
        for point in grid(trainer):
            # the quick preset's cadence and targets; the grid point over the trainer's defaults, nothing tuned
            job = make_job(system, trainer, "dense", TUNING_SEED, budget_s=budget_s, threads=threads)
            job.config = point
            jobs.append(job)
    # One directory per grid point keeps records apart (record names do not carry the config).
    tags = ["_".join(f"{k}={v}" for k, v in job.config.items()) for job in jobs]
    placed = [(job, out / f"{job.system}__{job.trainer}__{tag}" / "runs" / job.name) for job, tag in zip(jobs, tags)]
    records = {(job.system, job.trainer, tag): record
               for job, tag, record in zip(jobs, tags, run_jobs(placed, executor=executor, replace=replace))}
    settings = read_toml(settings_path) if settings_path.exists() else {}
    today = datetime.date.today().isoformat()
    for system, trainer in itertools.product(systems, trainers):
        candidates = [(score(r), tag, r) for (s, t, tag), r in records.items() if (s, t) == (system, trainer)]
        (_, ttt, final), _, best = min(candidates, key=lambda c: c[0])
        point = {k: best["config"][k] for k in grid(trainer)[0]}
        settings.setdefault(system, {})[trainer] = {**point, "tuned_time_to_target_s": ttt if ttt < math.inf
                                                    else -1.0, "tuned_final_metric": final,
                                                    "tuned_budget_s": budget_s, "tuned_on": today}
        print(f"{system} / {trainer}: {point} (time to target {ttt:.3g} s, final metric {final:.3g})",
              file=sys.stderr)
    return settings


def write_tuned(settings: dict, path: Path) -> None:
    lines = ["# Written by `specbench tune` (specbench/tune.py): the best point of each trainer's grid on tuning",
             f"# seed {TUNING_SEED}, dense regime. tuned_* keys say how each entry was chosen (its budget per point,",
             "# its date, the score that won; tuned_time_to_target_s = -1: no point reached the target); trainers",
             "# ignore them.", ""]
    for system in sorted(settings):
        for trainer in sorted(settings[system]):
            lines.append(f'["{system}"."{trainer}"]')
            for k, v in settings[system][trainer].items():
                lines.append(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"')
            lines.append("")
    from specbench.results import write_text_atomic

    write_text_atomic(path, "\n".join(lines))
