"""`specbench tune`: one procedure, the same effort for every trainer, writes the settings presets read.

For each system and trainer, every point of the trainer's grid (six points each: the learning rate against one
knob that matters for that family) is trained for the same budget on a tuning seed no report uses (100). The
winner is the point with the shortest time to the system's target among those that end the budget at or below
it; then the fastest that crossed it (a first crossing on an unstable curve is the knife edge DESIGN.md warns
about); where none reaches it, the lowest final common metric. The winners go to
`specbench/presets/tuned.toml`, with the score that won, and every tuning record stays in the tuning directory
as evidence.
"""
from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

from specbench.executors import Local
from specbench.presets import TUNED, load_preset, tuned_settings
from specbench.protocol import Job
from specbench.runner import run_jobs

TUNING_SEED = 100
LEARNING_RATES = [3e-3, 1e-2, 3e-2]
KNOB = {  # the second axis of each trainer's grid: what, for that family, most changes speed to target
    "spectral": ("rho", [0.03, 0.3]),
    "spectral-2stage": ("p", [4, 8]),
    "backprop-rk4": ("segment_length", [10, 40]),
    "backprop-dopri5": ("segment_length", [10, 40]),
    "adjoint-dopri5": ("segment_length", [10, 40]),
}


def grid(trainer: str) -> list[dict]:
    knob, values = KNOB[trainer]
    return [{"lr": lr, knob: v} for lr, v in itertools.product(LEARNING_RATES, values)]


def score(record: dict) -> tuple[int, float, float]:
    """Lower is better: (0 if the run ended at or below the target else 1, time to target, final metric)."""
    ttt = record.get("time_to_target_s")
    final = record.get("final_train_loss")
    final = final if final is not None else math.inf
    return (0 if final <= record["target_loss"] else 1, ttt if ttt is not None else math.inf, final)


def tune(systems: list[str], trainers: list[str], budget_s: float, out: Path, threads: int | None,
         executor=None) -> dict:
    preset = load_preset("quick")  # for the targets and the evaluation cadence
    executor = executor or Local()
    threads = threads or executor.default_threads()
    jobs = []
    for system, trainer in itertools.product(systems, trainers):
        for i, point in enumerate(grid(trainer)):
            jobs.append(Job(system=system, trainer=trainer, regime="dense", seed=TUNING_SEED, budget_s=budget_s,
                            target=preset.targets[system], config=point, threads=threads,
                            cadence=preset.cadence))
    # One directory per grid point keeps records apart (record names do not carry the config).
    tags = ["_".join(f"{k}={v}" for k, v in job.config.items()) for job in jobs]
    placed = [(job, out / f"{job.system}__{job.trainer}__{tag}" / "runs" / job.name) for job, tag in zip(jobs, tags)]
    records = {(job.system, job.trainer, tag): record
               for job, tag, record in zip(jobs, tags, run_jobs(placed, executor=executor))}
    settings = tuned_settings()
    for system, trainer in itertools.product(systems, trainers):
        candidates = [(score(r), tag, r) for (s, t, tag), r in records.items() if (s, t) == (system, trainer)]
        (_, ttt, final), _, best = min(candidates, key=lambda c: c[0])
        point = {k: best["config"][k] for k in grid(trainer)[0]}
        settings.setdefault(system, {})[trainer] = {**point, "tuned_time_to_target_s": ttt if ttt < math.inf
                                                    else -1.0, "tuned_final_metric": final}
        print(f"{system} / {trainer}: {point} (time to target {ttt:.3g} s, final metric {final:.3g})",
              file=sys.stderr)
    return settings


def write_tuned(settings: dict, budget_s: float, path: Path = TUNED) -> None:
    lines = ["# Written by `specbench tune` (specbench/tune.py): the best point of each trainer's grid on tuning",
             f"# seed {TUNING_SEED}, {budget_s:g} s budget per point, dense regime. tuned_* keys are the scores that",
             "# won (tuned_time_to_target_s = -1: no point reached the target); trainers ignore them.", ""]
    for system in sorted(settings):
        for trainer in sorted(settings[system]):
            lines.append(f'["{system}"."{trainer}"]')
            for k, v in settings[system][trainer].items():
                lines.append(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"')
            lines.append("")
    path.write_text("\n".join(lines))
