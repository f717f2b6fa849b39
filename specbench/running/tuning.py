"""`specbench tune`: one procedure and the same effort for every trainer, for each system and regime; writes the
settings presets read (docs/design.md, "Tuning").

Each trainer declares the space that decides its speed (its settings' grids, `specbench.trainers.settings`). In
each cell the grids are first fitted to its data: a value past a setting's limit there (K beyond the observation
intervals, a segment longer than a trajectory) would run as another value of the grid, so it is dropped and the
grid extended from its other edge by the setting's own rule. The same number of points (POINTS) is drawn from every
trainer's space, a balanced design in which each value of each setting occurs about equally often, no two of which
run as the same settings (`design`). Then successive halving (Jamieson and Talwalkar 2016; the rungs of Hyperband) on
the budget B the reference gives that system and regime (the preset's `budget_s`, `presets.budget_s_for`):
  rung 1: every point for B/9 on tuning seed 100;
  rung 2: the best third for B/3 on seeds 100 and 101. A winner on an edge of a setting's grid is then tried one
          step past it, by the setting's rule (lr 3e-2 -> 9e-2 on a log scale, p 8 -> 10 on a linear one, the next
          tolerance pair or batch size of a ladder), within the setting's valid range and its limit on the data, at
          the same rung; as long as the point past an edge wins, the grid is extended again, until the winner is
          inside its grid or at an end of the setting's range (then the entry says so: `tuned_edge`);
  rung 3: the winner for B on `seeds` tuning seeds (100, 101, 102): what it reaches on the budget the reference
          uses, recorded with the entry.
Tuning seeds are ones no report uses. Points are ranked by the reference's own rule (the first crossing and the best
checkpoint), made robust (`rank`): fewest runs that never reached the target first, so a point that reached it on
one of rung 2's seeds cannot beat one that reached it on both; then the median time to target, where times closer
to the fastest than the evaluation resolution (the gap between the crossing evaluation and the one before it on
the run's curve, or 5% of the time, whichever is larger) are ties, decided by the median best metric. Under that
rule a run's time to target does not depend on how long it went on after it (with a constant schedule), so the
short rungs rank what the full budget would.
The winners go to the tuned-settings file (`--settings`, default `tuned.toml` in the tuning directory; the
package's own file only when named) as [system.regime.trainer], each with its scores, budget, seeds, date, the
extension steps its grids took and the settings it sits on an end of the range of, and every tuning record stays
in the tuning directory (OUT/system/regime/trainer/POINT@BUDGETs/runs/) as evidence.
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

from specbench.core import measures
from specbench.core.errors import UsageError
from specbench.core.io import write_text_atomic
from specbench.core.records import Record
from specbench.registries import get_system, get_trainer
from specbench.running.executors import Local
from specbench.running.job import make_job
from specbench.running.presets import REFERENCE_PRESET, Preset, budget_s_for, load_preset, read_toml
from specbench.running.sweeps import run_jobs
from specbench.systems.datasets import make_dataset
from specbench.trainers.base import cannot_use
from specbench.trainers.settings import Shape, axes_of, by_name

TUNING_SEED = 100
POINTS = 12  # per trainer, system and regime: the same for every trainer
TIE = 0.05  # times to target closer than this fraction (or the evaluation resolution) are ties
MAX_EXTENSIONS = 10  # rounds of extension per cell and trainer at most: a grid that still gains then says so


@dataclass(frozen=True)
class Rung:
    share: float  # of the budget B
    points: int  # how many of the previous rung's best it runs (the first: every point)
    seeds: int  # tuning seeds from TUNING_SEED; the last rung's come from `tune(seeds=)`


RUNGS = (Rung(1 / 9, POINTS, 1), Rung(1 / 3, POINTS // 3, 2), Rung(1.0, 1, 3))
HOW = ("successive halving: 12 points at B/9 on 1 seed, the best 4 at B/3 on 2 seeds (a winner on a grid's edge "
       "extended past it until inside), the best at B; ties within the evaluation resolution go to the best metric")


@dataclass(frozen=True)
class Cell:
    """A system and regime, and the budget B its runs are tuned for."""

    system: str
    regime: str
    budget_s: float


def shape_of(cell: Cell, preset: Preset) -> Shape:
    """The size of the training data of `cell`'s runs."""
    spec = get_system(cell.system, **preset.system_params.get(cell.system, {})).regimes[cell.regime]
    return Shape(spec.n_train, spec.n_times)


def capable(cells: list[Cell], trainers: list[str], preset: Preset) -> list[tuple[Cell, str]]:
    """The (cell, trainer) pairs in which the trainer can learn from the cell's data (each cell's data read once);
    where it cannot (the two-stage ablation on hidden states) there is nothing to tune, and tuning says so in one
    line instead of ranking points that are all "n/a"."""
    tasks = []
    for cell in cells:
        system = get_system(cell.system, **preset.system_params.get(cell.system, {}))
        data = make_dataset(system, cell.regime, preset.noise, TUNING_SEED)
        for trainer in trainers:
            why = cannot_use(get_trainer(trainer), data)
            if why:
                print(f"specbench tune: {cell.system} / {cell.regime} / {trainer}: not tuned: {why}", file=sys.stderr)
            else:
                tasks.append((cell, trainer))
    return tasks


def grids(trainer: str, shape: Shape | None = None) -> dict[str, list]:
    """The trainer's grids (axis -> values; a joint axis's values are tables), fitted to data of `shape`
    (`Setting.within`); as declared when `shape` is None."""
    cls = get_trainer(trainer)
    axes = axes_of(cls.settings)
    if not axes:
        raise UsageError(f"trainer {trainer!r} declares no tuning grid")
    return {name: list(axis.within(shape, cls.defaults)) for name, axis in axes.items()}


def runs_as(trainer: str, point: dict, shape: Shape | None) -> dict:
    """`point` as the trainer runs it on data of `shape`: each value past its setting's limit there replaced by
    what it runs as (a mini-batch of every element is "all")."""
    cls = get_trainer(trainer)
    declared, settings = by_name(cls.settings), {**cls.defaults, **settings_of(point)}
    return {name: declared[name].runs_as(value, shape, settings) if name in declared else value
            for name, value in point.items()}


def design(trainer: str, n: int = POINTS, shape: Shape | None = None) -> list[dict]:
    """`n` points of the trainer's tuning space (its grids fitted to data of `shape`), no two of which run as the
    same settings there, each value of each setting about equally often (a Latin-hypercube design on the values),
    drawn with a seed from the trainer's name, so the same points every time. A space with at most `n` distinct
    points is searched whole; where a limit of the data makes some points run alike (a mini-batch of every element
    is "all"), distinct points of the space fill the design up to `n`."""
    axes = grids(trainer, shape)
    product = distinct(trainer, shape, [dict(zip(axes, values)) for values in itertools.product(*axes.values())])
    if len(product) <= n:
        return product
    rng = random.Random(zlib.crc32(trainer.encode()))
    best: list[dict] = []
    for _ in range(1000):
        columns = {}
        for name, values in axes.items():
            column = [values[i % len(values)] for i in range(n)]
            rng.shuffle(column)
            columns[name] = column
        points = distinct(trainer, shape, [{name: columns[name][i] for name in axes} for i in range(n)])
        if len(points) == n:
            return points
        best = max(best, points, key=len)
    rng.shuffle(product)
    return (best + [p for p in product if p not in best])[:n]


def distinct(trainer: str, shape: Shape | None, points: list[dict]) -> list[dict]:
    """`points` as they run on data of `shape`, each once, in order."""
    out = []
    for point in points:
        point = runs_as(trainer, point, shape)
        if point not in out:
            out.append(point)
    return out


def settings_of(point: dict) -> dict:
    """A point as trainer settings: a value that is a table of settings (tolerances) spreads into them."""
    out = {}
    for name, value in point.items():
        out.update(value if isinstance(value, dict) else {name: value})
    return out


def label(point: dict) -> str:
    """A point in a progress line: its settings, as in its directory's name."""
    return ", ".join(f"{k}={v}" for k, v in settings_of(point).items())


def past_edges(trainer: str, point: dict, tried: dict[str, list], shape: Shape | None = None
               ) -> tuple[list[tuple[str, dict]], list[str]]:
    """For each setting of `point` on an edge of the values `tried` so far: the point one step past that edge by
    the setting's rule (`Setting.past`), or, where there is none (the edge is an end of the setting's valid range,
    or of its limit on data of `shape`), the setting's name. Returns (steps, names at an end)."""
    cls = get_trainer(trainer)
    axes, settings = axes_of(cls.settings), {**cls.defaults, **settings_of(point)}
    steps, ends = [], []
    for name, axis in axes.items():
        ordered = axis.ordered(tried[name])
        if not axis.scale or axis.scale != "ladder" and len(ordered) < 2:
            continue  # unordered choices, or one value of a numeric scale: no edge to pass
        for up in (False, True):
            if point[name] != (ordered[-1] if up else ordered[0]):
                continue
            new = axis.past(tried[name], up, shape, settings)
            if new is None:
                ends.append(name)
            else:
                steps.append((name, {**point, name: new}))
    return steps, list(dict.fromkeys(ends))


@dataclass(frozen=True)
class Score:
    """A point's runs at one rung, summarised for ranking (`rank`)."""

    missed: int  # runs that never reached the target
    time: float  # median time to target (first crossing); inf where most runs did not reach it
    resolution: float  # the coarsest evaluation resolution at its runs' crossings (`resolution`)
    metric: float  # median best metric (best checkpoint); inf where none


def resolution(record: Record) -> float:
    """How finely the run's curve resolves its time to target: the gap between the evaluation that crossed the
    target and the one before it, or TIE of the time, whichever is larger (0 when it never crossed)."""
    t = measures.time_to_target(record)
    if t is None:
        return 0.0
    before = [s for s, _, _ in record.curve if s < t]
    return max(t - max(before) if before else t, TIE * t)


def score(records: list[Record]) -> Score:
    """A point's runs as a Score, a missing time or metric counting as infinite."""
    times = [t if (t := measures.time_to_target(r)) is not None else math.inf for r in records]
    best = [r.best_checkpoint["metric"] if r.best_checkpoint else
            r.final_train_loss if r.ok and r.final_train_loss is not None else math.inf for r in records]
    return Score(sum(t == math.inf for t in times), statistics.median(times),
                 max(resolution(r) for r in records), statistics.median(best))


def rank(scores: list[Score]) -> list[int]:
    """The indices of `scores`, best first. Repeatedly: among the points with the fewest runs that missed the
    target, the fastest (median time to target) and every point whose time is within the evaluation resolution of
    it (the coarser of the two) tie, and the one with the best median metric among them goes next. So a point that
    missed the target on a seed never beats one that reached it on all, and a 2% faster point with a worse metric
    loses to the better metric."""
    left, order = list(range(len(scores))), []
    while left:
        fewest = min(scores[i].missed for i in left)
        pool = [i for i in left if scores[i].missed == fewest]
        lead = scores[min(pool, key=lambda i: (scores[i].time, scores[i].metric, i))]
        tied = pool if lead.time == math.inf else \
            [i for i in pool if scores[i].time - lead.time < max(lead.resolution, scores[i].resolution)]
        best = min(tied, key=lambda i: (scores[i].metric, scores[i].time, i))
        order.append(best)
        left.remove(best)
    return order


def tune(cells: list[Cell], trainers: list[str], out: Path, threads: int | None, settings_path: Path,
         executor=None, replace: bool = False, seeds: int = RUNGS[-1].seeds, preset: Preset | None = None) -> dict:
    """Tune every trainer on every cell by successive halving, with the preset's targets, cadence, noise and run
    time limit (default: the paper preset's); the settings file's table with the winners."""
    preset = preset or load_preset(REFERENCE_PRESET)
    executor = executor or Local()
    settings = read_settings(settings_path)  # a broken file is said now, not after hours of tuning
    threads = threads or executor.default_threads()
    rungs = RUNGS[:-1] + (Rung(RUNGS[-1].share, RUNGS[-1].points, seeds),)
    tasks = capable(cells, trainers, preset)
    shapes = {cell: shape_of(cell, preset) for cell in cells}
    alive = {task: design(task[1], POINTS, shapes[task[0]]) for task in tasks}  # the points each task still runs
    tried = {task: grids(task[1], shapes[task[0]]) for task in tasks}  # each axis's values so far (extended)
    scores: dict[tuple, Score] = {}  # (cell, trainer, rung, repr(point)) -> score
    extended: dict[tuple, dict[str, int]] = {task: {} for task in tasks}  # setting -> extension steps taken
    edges: dict[tuple, list[str]] = {task: [] for task in tasks}  # settings still on an end of their range

    def run_rung(r: int, points: dict[tuple, list[dict]]) -> None:
        """Run the points not yet scored at rung `r`, on its seeds, and score them."""
        rung = rungs[r]
        placed, keys, labels = [], [], []
        for (cell, trainer), pts in points.items():
            budget_s = cell.budget_s * rung.share
            for point in pts:
                if (cell, trainer, r, repr(point)) in scores:
                    continue
                tag = "_".join(f"{k}={v}" for k, v in settings_of(point).items())
                for seed in range(TUNING_SEED, TUNING_SEED + rung.seeds):
                    # the point over the trainer's defaults alone: nothing tuned before, no preset's settings; in a
                    # persistent worker's process: tuning reads no memory, and pays imports and data once
                    job = make_job(cell.system, trainer, cell.regime, seed, budget_s=budget_s, threads=threads,
                                   preset=preset, config=settings_of(point), from_defaults=True,
                                   fresh_process=False)
                    where = out / cell.system / cell.regime / trainer / f"{tag}@{budget_s:.4g}s" / "runs" / job.name
                    placed.append((job, where))
                    keys.append((cell, trainer, r, repr(point)))
                    labels.append(label(point))
        if not placed:
            return
        print(f"specbench tune: rung {r + 1} of {len(rungs)}: {len(placed)} runs, "
              f"{sum(j.budget_s for j, _ in placed):.0f} s of training", file=sys.stderr)
        by_key: dict[tuple, list[Record]] = {}
        done = run_jobs(placed, timeout_factor=preset.timeout_factor, executor=executor, replace=replace, labels=labels)
        for key, record in zip(keys, done):
            by_key.setdefault(key, []).append(record)
        scores.update({key: score(rs) for key, rs in by_key.items()})

    def ranked(task, r: int, pts: list[dict]) -> list[dict]:
        order = rank([scores[(*task, r, repr(p))] for p in pts])
        return [pts[i] for i in order]

    def extend(r: int) -> None:
        """Extend the grids the rung's winners sit on an edge of, one step at a time at this rung, for as long
        as the point past an edge wins (at most MAX_EXTENSIONS rounds)."""
        winners = {task: ranked(task, r, pts)[0] for task, pts in alive.items()}
        going = list(tasks)
        for _ in range(MAX_EXTENSIONS):
            steps = {}
            for task in going:
                steps[task], edges[task] = past_edges(task[1], winners[task], tried[task], shapes[task[0]])
            going = [task for task in going if steps[task]]
            run_rung(r, {task: [p for _, p in steps[task]] for task in going})
            for task in going:
                best = ranked(task, r, [winners[task]] + [p for _, p in steps[task]])[0]
                if best != winners[task]:
                    name = next(n for n, p in steps[task] if p == best)
                    tried[task][name].append(best[name])
                    extended[task][name] = extended[task].get(name, 0) + 1
                    winners[task] = best
            going = [task for task in going if winners[task] in [p for _, p in steps[task]]]  # lost: inside
            if not going:
                break
        for task in going:  # still gaining after MAX_EXTENSIONS rounds: on an edge, and said so
            edges[task] = list(dict.fromkeys(edges[task] + [n for n, _ in past_edges(
                task[1], winners[task], tried[task], shapes[task[0]])[0]]))
        alive.update({task: [winner] for task, winner in winners.items()})  # what the last rung runs

    for r, rung in enumerate(rungs):
        if r:
            alive = {task: ranked(task, r - 1, pts)[:rung.points] for task, pts in alive.items()}
        run_rung(r, alive)
        if r == len(rungs) - 2:
            extend(r)
    today = datetime.date.today().isoformat()
    for cell, trainer in tasks:
        task = (cell, trainer)
        winner = alive[task][0]
        result = scores[(cell, trainer, len(rungs) - 1, repr(winner))]
        entry = {**settings_of(winner),
                 "tuned_time_to_target_s": result.time if result.time < math.inf else -1.0,
                 "tuned_best_metric": result.metric if result.metric < math.inf else -1.0,
                 "tuned_reached": seeds - result.missed, "tuned_budget_s": cell.budget_s, "tuned_seeds": seeds,
                 "tuned_on": today, "tuned_by": HOW}
        if extended[task]:
            entry["tuned_extended"] = extended[task]
        if edges[task]:
            entry["tuned_edge"] = edges[task]
        settings.setdefault(cell.system, {}).setdefault(cell.regime, {})[trainer] = entry
        print(f"{cell.system} / {cell.regime} / {trainer}: {settings_of(winner)} (on {seeds} seeds at "
              f"{cell.budget_s:g} s: reached {seeds - result.missed}, time to target {result.time:.3g} s, best "
              f"metric {result.metric:.3g})", file=sys.stderr)
    return settings


def cells_of(preset: Preset, systems: list[str] | None, regimes: list[str] | None,
             budget_s: float | None) -> list[Cell]:
    """The cells to tune: the preset's systems and regimes (or those given), each with the preset's budget for
    it (or `budget_s` for all)."""
    return [Cell(s, r, float(budget_s) if budget_s else budget_s_for(preset, s, r))
            for s in systems or preset.systems for r in regimes or preset.regimes]


HEADER = f"""\
# Written by `specbench tune` (specbench/running/tuning.py): for each system, regime and trainer, the winner of
# {HOW}
# on tuning seeds {TUNING_SEED}, {TUNING_SEED + 1}, ...; B is the reference's budget for that system and regime
# (tuned_budget_s). Points rank by the runs that missed the target (fewest first), then the median first crossing,
# where times within the evaluation resolution of the fastest (the gap to the evaluation before the crossing, at
# least {TIE:.0%} of the time) tie and the median best metric decides. tuned_* keys say how each entry was chosen
# (the winner's median time to target at B, -1: it did not reach the target on most seeds; its median best metric;
# on how many seeds it reached the target; tuned_extended: the extension steps each extended grid took; tuned_edge:
# the settings it still sits on an end of the valid range of); trainers ignore them.

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
