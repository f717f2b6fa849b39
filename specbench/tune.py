"""`specbench tune`: one procedure and the same effort for every trainer, for each system and regime; writes the
settings presets read (docs/design.md, "Tuning").

Each trainer declares the space that decides its speed (`tuning_grid`: setting -> values). The same number of
points (POINTS) is drawn from every trainer's space, a balanced design in which each value of each setting occurs
about equally often (`design`), the same points for every system and regime. Then successive halving (Jamieson and
Talwalkar 2016; the rungs of Hyperband) on the budget B the reference gives that system and regime (the preset's
`[budgets]`):
  rung 1: every point for B/9 on tuning seed 100;
  rung 2: the best third for B/3 on seed 100; a winner on the edge of a numeric setting's values is then tried one
          step past that edge (geometrically: lr 3e-3 -> 9e-4), once, at the same rung, and wins if it is better;
  rung 3: the winner for B on `seeds` tuning seeds (100, 101, 102): what it reaches on the budget the reference
          uses, recorded with the entry.
Tuning seeds are ones no report uses. Points are ranked, lower first, by (runs that never reached the target, median
time to target, median best metric), a missing time or metric counting as infinite: the first crossing and the
best checkpoint, the rule of the reference itself. Under that rule a run's time to target does not depend on how
long it went on after it (with a constant schedule), so the short rungs rank what the full budget would.
The winners go to the tuned-settings file (`--settings`, default `tuned.toml` in the tuning directory; the
package's own file only when named) as [system.regime.trainer], each with its scores, budget, seeds and date, and
every tuning record stays in the tuning directory (OUT/system/regime/trainer/POINT@BUDGETs/runs/) as evidence.
"""
from __future__ import annotations

import datetime
import itertools
import math
import random
import statistics
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from specbench import measures
from specbench.errors import UsageError
from specbench.executors import Local
from specbench.io import write_text_atomic
from specbench.job import make_job
from specbench.plugins import get_trainer
from specbench.presets import Preset, budget_for, load_preset, read_toml
from specbench.records import Record
from specbench.runner import run_jobs

TUNING_SEED = 100
POINTS = 12  # per trainer, system and regime: the same for every trainer


@dataclass(frozen=True)
class Rung:
    share: float  # of the budget B
    points: int  # how many of the previous rung's best it runs (the first: every point)
    seeds: int  # tuning seeds from TUNING_SEED; the last rung's come from `tune(seeds=)`


RUNGS = (Rung(1 / 9, POINTS, 1), Rung(1 / 3, POINTS // 3, 1), Rung(1.0, 1, 3))
HOW = "successive halving: 12 points at B/9 on 1 seed, the best 4 at B/3 (and one step past an edge), the best at B"


@dataclass(frozen=True)
class Cell:
    """A system and regime, and the budget B its runs are tuned for."""

    system: str
    regime: str
    budget_s: float


def design(trainer: str, n: int = POINTS) -> list[dict]:
    """`n` distinct points of the trainer's tuning space, each value of each setting about equally often (a
    Latin-hypercube design on the values), drawn with a seed from the trainer's name, so the same points every
    time. A space with at most `n` points is searched whole."""
    axes = get_trainer(trainer).tuning_grid
    if not axes:
        raise UsageError(f"trainer {trainer!r} declares no tuning_grid")
    product = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    if len(product) <= n:
        return product
    rng = random.Random(zlib.crc32(trainer.encode()))
    for _ in range(1000):
        columns = {}
        for name, values in axes.items():
            column = [values[i % len(values)] for i in range(n)]
            rng.shuffle(column)
            columns[name] = column
        points = [{name: columns[name][i] for name in axes} for i in range(n)]
        if len({repr(p) for p in points}) == n:
            return points
    raise UsageError(f"trainer {trainer!r}: no {n} distinct points in its tuning_grid")  # pragma: no cover


def settings_of(point: dict) -> dict:
    """A point as trainer settings: a value that is a table of settings (tolerances) spreads into them."""
    out = {}
    for name, value in point.items():
        out.update(value if isinstance(value, dict) else {name: value})
    return out


def past_edges(point: dict, axes: dict) -> list[tuple[str, dict]]:
    """For each numeric setting at an edge of its values in `axes`, the point one step past that edge (the ratio
    of the two outermost values; integers rounded, and only where that is a new value >= 1)."""
    out = []
    for name, values in axes.items():
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) or len(values) < 2:
            continue
        ordered = sorted(values)
        if point[name] == ordered[0]:
            new = ordered[0] ** 2 / ordered[1]
        elif point[name] == ordered[-1]:
            new = ordered[-1] ** 2 / ordered[-2]
        else:
            continue
        if all(isinstance(v, int) for v in values):
            new = round(new)
            if new < 1 or new in values:
                continue
        out.append((name, {**point, name: float(f"{new:.3g}") if isinstance(new, float) else new}))
    return out


def score(records: list[Record]) -> tuple[int, float, float]:
    """Lower is better, over a point's runs: (how many never reached the target, median time to target (first
    crossing), median best metric), a missing time or metric counting as infinite."""
    times = [t if (t := measures.time_to_target(r)) is not None else math.inf for r in records]
    best = [r.best_checkpoint["metric"] if r.best_checkpoint else
            r.final_train_loss if r.ok and r.final_train_loss is not None else math.inf for r in records]
    return sum(t == math.inf for t in times), statistics.median(times), statistics.median(best)


def tune(cells: list[Cell], trainers: list[str], out: Path, threads: int | None, settings_path: Path,
         executor=None, replace: bool = False, seeds: int = RUNGS[-1].seeds, preset: Preset | None = None) -> dict:
    """Tune every trainer on every cell by successive halving, with the preset's targets, cadence and noise
    (default: the paper preset's); the settings file's table with the winners."""
    preset = preset or load_preset("paper")
    executor = executor or Local()
    settings = read_settings(settings_path)  # a broken file is said now, not after hours of tuning
    threads = threads or executor.default_threads()
    rungs = RUNGS[:-1] + (Rung(RUNGS[-1].share, RUNGS[-1].points, seeds),)
    tasks = list(itertools.product(cells, trainers))
    axes = {trainer: get_trainer(trainer).tuning_grid for trainer in trainers}
    alive = {task: design(task[1]) for task in tasks}  # the points each (cell, trainer) still runs
    scores: dict[tuple, tuple] = {}  # (cell, trainer, rung, repr(point)) -> score
    extended: dict[tuple, str] = {}

    def run_rung(r: int, points: dict[tuple, list[dict]]) -> None:
        rung = rungs[r]
        placed, keys = [], []
        for (cell, trainer), pts in points.items():
            budget = cell.budget_s * rung.share
            for point in pts:
                tag = "_".join(f"{k}={v}" for k, v in settings_of(point).items())
                for seed in range(TUNING_SEED, TUNING_SEED + rung.seeds):
                    # a persistent worker's process: tuning reads no memory, and pays imports and data once
                    job = make_job(cell.system, trainer, cell.regime, seed, budget_s=budget, threads=threads,
                                   preset=preset, fresh_process=False)
                    job.config = settings_of(point)  # the point over the trainer's defaults, nothing tuned before
                    where = out / cell.system / cell.regime / trainer / f"{tag}@{budget:.4g}s" / "runs" / job.name
                    placed.append((job, where))
                    keys.append((cell, trainer, r, repr(point)))
        if not placed:
            return
        print(f"specbench tune: rung {r + 1} of {len(rungs)}: {len(placed)} runs, "
              f"{sum(j.budget_s for j, _ in placed):.0f} s of training", file=sys.stderr)
        by_key: dict[tuple, list[Record]] = {}
        for key, record in zip(keys, run_jobs(placed, executor=executor, replace=replace)):
            by_key.setdefault(key, []).append(record)
        scores.update({key: score(rs) for key, rs in by_key.items()})

    def ranked(task, r: int, pts: list[dict]) -> list[dict]:
        return sorted(pts, key=lambda p: scores[(*task, r, repr(p))])

    for r, rung in enumerate(rungs):
        if r:
            alive = {task: ranked(task, r - 1, pts)[:rung.points] for task, pts in alive.items()}
        run_rung(r, alive)
        if r == len(rungs) - 2:  # one step past the edge the rung's winner sits on, at this rung's budget
            past = {task: past_edges(ranked(task, r, pts)[0], axes[task[1]]) for task, pts in alive.items()}
            run_rung(r, {task: [p for _, p in steps] for task, steps in past.items() if steps})
            for task, steps in past.items():
                best = ranked(task, r, alive[task] + [p for _, p in steps])[0]
                extended.update({task: name for name, p in steps if p == best})
                alive[task] = [best] + [p for p in alive[task] if p != best]
    today = datetime.date.today().isoformat()
    for cell, trainer in tasks:
        winner = alive[(cell, trainer)][0]
        missed, ttt, best = scores[(cell, trainer, len(rungs) - 1, repr(winner))]
        entry = {**settings_of(winner), "tuned_time_to_target_s": ttt if ttt < math.inf else -1.0,
                 "tuned_best_metric": best if best < math.inf else -1.0, "tuned_reached": seeds - missed,
                 "tuned_budget_s": cell.budget_s, "tuned_seeds": seeds, "tuned_on": today, "tuned_by": HOW}
        if (cell, trainer) in extended:
            entry["tuned_extended"] = extended[(cell, trainer)]
        settings.setdefault(cell.system, {}).setdefault(cell.regime, {})[trainer] = entry
        print(f"{cell.system} / {cell.regime} / {trainer}: {settings_of(winner)} (on {seeds} seeds at "
              f"{cell.budget_s:g} s: reached {seeds - missed}, time to target {ttt:.3g} s, best metric {best:.3g})",
              file=sys.stderr)
    return settings


def cells_of(preset: Preset, systems: list[str] | None, regimes: list[str] | None,
             budget_s: float | None) -> list[Cell]:
    """The cells to tune: the preset's systems and regimes (or those given), each with the preset's budget for
    it (or `budget_s` for all)."""
    return [Cell(s, r, float(budget_s) if budget_s else budget_for(preset, s, r))
            for s in systems or preset.systems for r in regimes or preset.regimes]


HEADER = f"""\
# Written by `specbench tune` (specbench/tune.py): for each system, regime and trainer, the winner of
# {HOW}
# on tuning seeds {TUNING_SEED}, {TUNING_SEED + 1}, ...; B is the reference's budget for that system and regime
# (tuned_budget_s). tuned_* keys say how each entry was chosen (the winner's median time to target at B, -1: it
# did not reach the target on most seeds; its median best metric; on how many seeds it reached the target; the
# setting whose grid was extended, if one was); trainers ignore them.

"""


def read_settings(path: Path) -> dict:
    """The tuned settings already in `path` (empty when there is none); a file that is not TOML is a
    UsageError."""
    return read_toml(path) if path.exists() and path.stat().st_size else {}


def write_tuned(settings: dict, path: Path) -> None:
    """The tuned settings as TOML (tomli_w), sorted, under a header that says what they are."""
    def ordered(table, depth=0):  # system, regime, trainer sorted; an entry's keys as tuning wrote them
        if depth == 3 or not isinstance(table, dict):
            return table
        return {k: ordered(table[k], depth + 1) for k in sorted(table)}
    write_text_atomic(path, HEADER + tomli_w.dumps(ordered(settings)))
