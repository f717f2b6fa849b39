"""Verdicts for the paper's claims from run records: pure functions, no files, no figures.

Every comparison is paired by seed (docs/design.md): for each seed, the ratio baseline / spectral of one named measure
(specbench.core.measures) of the two runs with that seed. The printed value is the median of these per-seed ratios, the
bracket their min to max, n the number of seeds behind them. For C1 a baseline that did not reach the target
gives a lower bound (its training seconds over spectral's time); a seed on which spectral did not reach it gives
no ratio. A median is a lower bound ("> x") when some per-seed lower bound is at or below it (raising that bound
could raise the median). C1's time is the time to target, the first crossing (`measures.time_to_target`); the model
judged for C2 is the best checkpoint by the common metric (docs/design.md, "Measurement protocol").

Rules (threshold 10x for C1 and C2, 1x for C3 and the rivals):
- C1 fails against a baseline when the measured median ratio is below 10x, or when the baseline reaches the target
  in the median and spectral does not; it holds when the median ratio (a lower bound included) is >= 10x against
  every baseline; it is inconclusive where neither side reaches the target, or a lower bound below 10x remains,
  and the verdict says what budget would decide it (10x spectral's median time to target, or more than the budget
  where spectral did not reach the target).
- "C1 kept" is C1's rule, threshold and paired ratios on the sustained time (`measures.sustained_time`: the metric
  stays at or below the target to the end of the budget): a run that crosses and climbs back reaches the target
  for C1, not for C1 kept.
- A (system, regime) where no trainer learns a useful model (every trainer's median test NMSE over its ok seeds is
  >= 1, a trainer without an ok run counting as not useful) has the verdict "no useful model" for C1, C1 kept, C2
  and the rivals (which compare the same two measures) instead of ratios between useless models. Where some trainer
  learned one and the candidate did not, C1's and C1 kept's reasons say so: its speed is to a training target its
  model does not generalise from (C2 judges that); and where the speed claim would hold, its verdict is "holds on
  training loss only", counted apart from "holds" wherever verdicts are counted (a win for a useless model is not
  a win).
- C2 and C3 alike on the paired test MSE and peak memory ratios.
- C1-C3 are judged against the paper's baselines (role "baseline") only. The rivals (role "rival": fast-training
  methods the paper did not compare with) have their own verdict per (system, regime), "rivals": the paired ratios
  rival / spectral of time to target (C1's ratios, lower bounds included) and of test MSE (C2's), each judged by
  C1's and C2's rules with the threshold 1x. It holds when spectral is at least as fast and at least as accurate
  as every rival (both medians >= 1x, a lower bound included), fails when either median is below 1x against any
  rival (or a rival reaches the target in the median and spectral does not), and is inconclusive otherwise (a
  lower bound below 1x, neither reaching the target, no seed in common). A cell without rival runs has no such
  verdict.
- A claim without data (no spectral runs, no baselines, a study not run) is "not measured".
- A headline or rivals verdict that decides (holds, holds on training loss only, fails) from fewer of spectral's
  seeds than the reference uses (the paper preset's seeds) is indicative (`Verdict.indicative` says why): a quick
  run's "fails" is not the reference's "fails", and the report points to the reference for the decisive ones.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np

from specbench.core import measures
from specbench.core.records import ROLES, Record
from specbench.core.table import grouped, table
from specbench.registries import TRAINERS
from specbench.running.presets import REFERENCE_PRESET, load_preset

if TYPE_CHECKING:
    import pandas as pd

SPEEDUP_CLAIM = 10.0  # C1: at least 10x faster to a comparable loss
MSE_CLAIM = 10.0  # C2: test MSE one order of magnitude smaller
RIVALS_CLAIM = 1.0  # rivals: at least as fast to the target and at least as accurate as each rival
RIVALS = "rivals"  # the verdict (and board column) of spectral against the rivals
RIVAL_MEASURES = ("time to target", "test MSE")  # what the rivals verdict compares, in its columns' order
KEPT = "C1 kept"  # C1's rule on the sustained time
USELESS = "no useful model"  # the verdict of NEED_A_USEFUL_MODEL's claims where no trainer learned a useful model
USEFUL_NMSE = 1.0  # a model whose test NMSE is at least this predicts no better than the test data's mean
TRAINING_ONLY = "holds on training loss only"  # a speed claim that holds for a candidate model that is not useful
# what a verdict may say (`Verdict.verdict`), in the board's order; the rules that decide them are this module's
# and, for the studies, specbench.claims.study_verdicts (STUDY_RULES)
OUTCOMES = ("holds", TRAINING_ONLY, "fails", "inconclusive", USELESS, "not measured")
NOT_REACHED = "not reached"  # a time a run never had, wherever a table shows one
# beside the word, wherever shown
MARK = {"holds": "✓", TRAINING_ONLY: "◐", "fails": "✗", "inconclusive": "?", USELESS: "⊘", "not measured": "–"}


@dataclass(frozen=True)
class Claim:
    """A claim as the report states it (`text`) and as the board's row header says it in a few words (`short`).
    `from_paper`: one of the paper's claims, on the board in every report ("not measured" where nothing decides
    it); False for a comparison beyond the paper, on the board only where some verdict decides it."""

    text: str
    short: str
    from_paper: bool = True


# The claims as the verdict board has them, in its order: the headline claims, then what the scaling studies decide,
# then the comparison beyond the paper.
CLAIMS = {
    "C1": Claim(f"speed: >= {SPEEDUP_CLAIM:g}x faster to the target of the common metric (time to target: first "
                "crossing; the model judged for C2 is the best checkpoint)",
                f"speed: ≥ {SPEEDUP_CLAIM:g}x faster to target"),
    KEPT: Claim("speed, target kept to the end: C1's rule on the sustained time (from the first evaluation after which "
                "the common metric stays at or below the target to the end of the budget)",
                "speed, target kept to the end", from_paper=False),
    "C2": Claim(f"generalisation: test MSE >= {MSE_CLAIM:g}x smaller", f"test MSE ≥ {MSE_CLAIM:g}x smaller"),
    "C3": Claim("memory: smaller peak memory (setup + training peak) than each baseline", "less peak memory"),
    "C3 at scale": Claim("memory at scale: C3 at the longest horizon of the horizon study (against whole "
                         "trajectories and tuned segments) and at the largest N of the state-size study",
                         "less memory at the largest size"),
    "C4": Claim("time-parallel: the network evaluations of an iteration (each one a sequential solver stage) do not "
                "grow with the horizon", "network calls flat in the horizon"),
    "C5": Claim("accuracy: representation error falls exponentially with the Legendre order",
                "error exponential in the order p"),
    "low data": Claim("low-data generalisation: C2 in every cell of the regimes study, dense and sparse sampling at "
                      "each noise level (its sparse and noisy cells are the paper's low-data claim)",
                      "C2 across sampling and noise"),
    RIVALS: Claim("against its rivals: at least as fast to the target and at least as low a test MSE as each rival "
                  "(a fast-training method the paper did not compare with), paired by seed",
                  "as fast and as accurate as each rival", from_paper=False),
}


@dataclass(frozen=True)
class Ratio:
    """spectral's advantage over one baseline (or rival): the median of per-seed ratios baseline / spectral (> 1
    favours spectral), their min and max and how many seeds; lower=True means the median is a lower bound "> value",
    upper=True an upper bound "< value"."""

    value: float
    lower: bool = False
    low: float = math.nan
    high: float = math.nan
    n: int = 0
    upper: bool = False

    def __str__(self):
        if math.isnan(self.value):
            return "n/a"
        text = f"{'> ' if self.lower else '< ' if self.upper else ''}{fmt(self.value)}x"
        if self.n > 1:
            text += f" ({fmt(self.low)} to {fmt(self.high)}, n={self.n})"
        elif self.n == 1:
            text += " (n=1)"
        return text


@dataclass(frozen=True)
class Verdict:
    """One claim judged in one setting. `regime` names the setting in the tables (a headline regime, or a study
    and its cell); `column`, `sampling` and `label` place it on the verdict board: its column (default: the claim),
    the regime of the runs behind it (its row with the system; default: `regime`) and, where a board cell holds
    several verdicts, what tells this one apart. `study`: the scaling study whose section shows it."""

    claim: str
    system: str
    regime: str
    verdict: str  # one of OUTCOMES
    ratios: dict  # baseline -> Ratio; for the rivals verdict, versus(rival, measure) -> Ratio
    why: str
    column: str = ""
    sampling: str = ""
    label: str = ""
    indicative: str = ""  # why a decided verdict is only indicative (fewer seeds than the reference's); "" if not
    study: str = ""  # the scaling study that decided it; "" for a headline verdict

    @property
    def shown(self) -> str:
        """The verdict as the board and the summary count it: indicative ones apart from decisive ones."""
        return f"{self.verdict} (indicative)" if self.indicative else self.verdict

    @property
    def cell(self) -> tuple[str, str, str]:
        """(column, system, regime of the runs): where the verdict sits on the board."""
        return self.column or self.claim, self.system, self.sampling or self.regime


def fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x:.3g}"


def median(values) -> float:
    v = sorted(math.inf if x is None else float(x) for x in values)
    if not v:
        return math.nan
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2 if math.isfinite(v[mid]) else v[mid]


def exponent(points) -> float:
    """Least-squares slope of log y against log x over the (x, y) points with positive values: y ~ x^slope."""
    xy = [(x, y) for x, y in points if y is not None and y > 0 and x > 0]
    if len(xy) < 2:
        return math.nan
    return float(np.polyfit(np.log([p[0] for p in xy]), np.log([p[1] for p in xy]), 1)[0])


def ordered(records: list[Record]) -> pd.DataFrame:
    """The records' table (specbench.core.table) in the order every comparison reads it: by system and regime, the
    trainers in registry order, each trainer's runs by seed."""
    t = table(records)
    return t.assign(order=t["trainer"].map(trainer_order)).sort_values(["system", "regime", "order", "seed"],
                                                                       kind="stable")


def group(records: list[Record]) -> dict[tuple[str, str, str], list[Record]]:
    """(system, regime, trainer) -> records over seeds, ordered by seed."""
    return grouped(ordered(records), ["system", "regime", "trainer"])


def per_cell(records: list[Record]) -> list[tuple[str, str, dict[str, list[Record]]]]:
    """(system, regime, {trainer: runs over seeds} in registry order), sorted by system and regime."""
    return [(system, regime, grouped(cell, "trainer"))
            for (system, regime), cell in ordered(records).groupby(["system", "regime"], sort=False)]


class SeedRatio(NamedTuple):
    """One seed's ratio value(baseline run) / value(spectral run), and whether it bounds the true one."""

    value: float
    lower: bool = False  # the true ratio is at least `value`: the baseline has no value, its bound stands for it
    upper: bool = False  # at most `value`: spectral has none, its bound stands for it


def seed_ratios(spec: list[Record], base: list[Record], value: Callable[[Record], float | None],
                bound: Callable[[Record], float | None] | None = None) -> list[SeedRatio]:
    """The per-seed ratios value(baseline run) / value(spectral run) for the same seed, in spectral's seed order.
    Where the baseline has no value, `bound(baseline run)` (if given) makes that seed's ratio a lower bound. Where
    spectral has none but the baseline has, `bound(spectral run)` (if given) makes it value(baseline) /
    bound(spectral), an upper bound (a time: a seed on which the baseline arrived and spectral did not counts
    against spectral, by as little as it can); where neither has one,
    or spectral has none and there is no bound, the seed gives no ratio. An infinite value (a model that blows up
    on the test states) gives a ratio of inf or 0, and none where both are infinite. What a verdict's median and
    the overview figures' dots are both made of."""
    by_seed = {r.seed: r for r in base}
    pairs = []
    for s in spec:
        b = by_seed.get(s.seed)
        if b is None:
            continue
        vs, vb = value(s), value(b)
        if vs is None:
            if vb is not None and bound is not None and (over := bound(s)):
                pairs.append(SeedRatio(vb / over, upper=True))
            continue
        if not vs > 0:
            continue
        if vb is not None:
            if not (math.isinf(vb) and math.isinf(vs)):
                pairs.append(SeedRatio(vb / vs))
        elif bound is not None and (under := bound(b)) is not None:
            pairs.append(SeedRatio(under / vs, lower=True))
    return pairs


def summarise(pairs: list[SeedRatio]) -> Ratio:
    """The median of per-seed ratios, their min to max and count: a lower bound when some per-seed lower bound is
    at or below the median (raising it could raise the median), else an upper bound when some per-seed upper bound
    is at or above it."""
    if not pairs:
        return Ratio(math.nan)
    values = [p.value for p in pairs]
    m = float(np.median(values))
    lower = any(p.lower and p.value <= m for p in pairs)
    upper = not lower and any(p.upper and p.value >= m for p in pairs)
    return Ratio(m, lower, min(values), max(values), len(values), upper)


def paired(spec: list[Record], base: list[Record], value: Callable[[Record], float | None],
           bound: Callable[[Record], float | None] | None = None) -> Ratio:
    """The median over seeds of value(baseline run) / value(spectral run) for the same seed (see seed_ratios)."""
    return summarise(seed_ratios(spec, base, value, bound))


TimeOf = Callable[[Record], float | None]  # a time measure of a run (specbench.core.measures); None: not reached


def _trained_s(r: Record) -> float:
    """What a baseline that never reached the target is bounded by: the seconds it trained (its budget if it
    failed)."""
    return r.train_seconds if r.status == "ok" else measures.budget_s(r)


@dataclass(frozen=True)
class Speed:
    """The time a speed claim is judged on: its measure, its name, and what a run does by that time (said of a
    trainer, and with "has not" before it)."""

    time: TimeOf
    words: str
    reaches: str
    reached: str


# The speed claims' times: C1's (the first crossing) and C1 kept's (the sustained time).
SPEEDS = {"C1": Speed(measures.time_to_target, "time to target", "reaches the target", "reached the target"),
          KEPT: Speed(measures.sustained_time, "sustained time to target", "reaches and keeps the target",
                      "reached and kept the target")}


def speed_ratios(spec: list[Record], base: list[Record], time: TimeOf = measures.time_to_target
                 ) -> list[SeedRatio]:
    """C1's per-seed ratios of `time` (default the time to target, the first crossing; C1 kept: the sustained time),
    the training seconds of the run that missed a seed bounding it (seed_ratios)."""
    return seed_ratios(spec, base, time, bound=_trained_s)


def speedup(spec: list[Record], base: list[Record], time: TimeOf = measures.time_to_target) -> Ratio:
    """C1's paired ratio (the median of speed_ratios)."""
    return summarise(speed_ratios(spec, base, time))


# The per-seed ratios behind each headline claim: (spectral runs, baseline runs) -> [(ratio, is a lower bound)].
SEED_RATIOS = {
    **{claim: partial(speed_ratios, time=speed.time) for claim, speed in SPEEDS.items()},
    "C2": lambda spec, base: seed_ratios(spec, base, measures.test_mse),
    "C3": lambda spec, base: seed_ratios(spec, base, measures.peak_memory),
}
THRESHOLDS = {"C1": SPEEDUP_CLAIM, KEPT: SPEEDUP_CLAIM, "C2": MSE_CLAIM, "C3": 1.0}


def median_time(runs: list[Record], time: TimeOf = measures.time_to_target) -> float:
    """The median of `time` over runs, a run that never reached the target counting as +inf."""
    return median(time(r) for r in runs)


def median_budget_s(runs: list[Record]) -> float:
    """The budget of a set of runs: the median of their budget_s."""
    return median(measures.budget_s(r) for r in runs)


@dataclass(frozen=True)
class Budget:
    """Whether a budget can decide a speed claim (docs/design.md: at least `factor` x spectral's median time, so that a
    baseline either arrives or leaves a lower bound >= `factor`): `budget_s` the budget, `spectral` spectral's median
    time (inf: not reached in the median; then `budget_s` is spectral's budget)."""

    budget_s: float
    spectral: float
    factor: float = SPEEDUP_CLAIM
    speed: Speed = SPEEDS["C1"]

    @property
    def needed(self) -> float:
        """`factor` x spectral's median time: the least budget that decides (inf where spectral never reached)."""
        return self.factor * self.spectral

    @property
    def reached(self) -> bool:
        """Whether spectral reached the target in the median."""
        return math.isfinite(self.spectral)

    @property
    def decides(self) -> bool:
        return self.needed <= self.budget_s

    def deciding(self) -> str:
        """The budget that would decide a claim this budget left open, in words."""
        if not self.reached:
            return (f"a budget of more than {fmt(self.budget_s)} s would decide it: spectral has not "
                    f"{self.speed.reached} within {fmt(self.budget_s)} s")
        if self.decides:  # enough for spectral's median, not for a seed on which spectral was slower
            return (f"a budget of more than {fmt(self.budget_s)} s would decide it: {fmt(self.budget_s)} s is at least "
                    f"{self.factor:g}x spectral's median {self.speed.words}, but not on every seed")
        return (f"a budget of {fmt(self.needed)} s ({self.factor:g}x spectral's median {self.speed.words}) would "
                "decide it")


def budget_checks(records: list[Record]) -> list[tuple[str, str, Budget]]:
    """(system, regime, its Budget for C1) for each headline (system, regime) with spectral runs, sorted: the budget
    is the median of all its records' budgets, spectral's time its median time to target (first crossing)."""
    in_cell = grouped(table(records), ["system", "regime"])
    return [(system, regime, Budget(median_budget_s(in_cell[(system, regime)]), median_time(spec)))
            for system, regime, spec, _ in cells(records) if spec]


def _speed_findings(spec: list[Record], bases: dict[str, list[Record]], threshold: float, speed: Speed
                    ) -> tuple[dict, list[str], list[str]]:
    """C1's rule at `threshold` on `speed`'s time against each of `bases`: (name -> Ratio, why it fails, why it is
    open); where a longer budget could settle what is open, the last reason names it: more than spectral's budget
    where spectral did not reach the target, else `threshold` x spectral's median time (more than the budget of the
    runs that left lower bounds where they already had that)."""
    ratios, fails, why_open, neither, bounds = {}, [], [], [], {}
    ts = median_time(spec, speed.time)
    for b, runs in bases.items():
        ratios[b] = r = speedup(spec, runs, speed.time)
        tb = median_time(runs, speed.time)
        if not math.isfinite(ts):
            if math.isfinite(tb):
                fails.append(f"{b} {speed.reaches} (median {fmt(tb)} s) and spectral does not")
            else:
                neither.append(b)
        elif math.isnan(r.value):
            why_open.append(f"no seed where spectral {speed.reached} has a {b} run")
        elif r.value < threshold and not r.lower:
            fails.append(f"{r} against {b}")
        elif r.value < threshold:
            bounds[f"{r} against {b}"] = median_budget_s(runs)
        elif r.upper:  # an upper bound at or over the threshold (spectral's seeds bounded by longer budgets)
            why_open.append(f"{r} against {b} is an upper bound (spectral has not {speed.reached} on some seed)")
    if neither:
        names = neither[0] if len(neither) == 1 else f"any of {', '.join(neither)}"
        why_open += [f"neither spectral nor {names} {speed.reaches}",
                     Budget(median_budget_s(spec), ts, threshold, speed).deciding()]
    if bounds:
        why_open += [f"lower bounds under {threshold:g}x (the other has not {speed.reached} on some seed): "
                     + ", ".join(bounds), Budget(max(bounds.values()), ts, threshold, speed).deciding()]
    return ratios, fails, why_open


def _ratio_findings(spec: list[Record], bases: dict[str, list[Record]], ratios_of: Callable, threshold: float,
                    what: str) -> tuple[dict, list[str], list[str]]:
    """C2's and C3's rule: the paired ratios `ratios_of(spec, runs)` (of a measure where lower is better, named
    `what`) against `threshold`: (name -> Ratio, why it fails, why it is open)."""
    ratios, fails, why_open = {}, [], []
    for b, runs in bases.items():
        ratios[b] = r = summarise(ratios_of(spec, runs))
        if math.isnan(r.value):
            why_open.append(f"no seed has a {what} for both spectral and {b}")
        elif r.value < threshold:
            fails.append(f"{r} against {b}")
    return ratios, fails, why_open


def _spectral_missed(spec: list[Record], speed: Speed, against: str = "baseline") -> str:
    """The seeds on which spectral did not reach the target, and how they count (seed_ratios); empty where none, or
    where it did not reach it in the median (the reasons say so then)."""
    missed = [s.seed for s in spec if speed.time(s) is None]
    if not missed or not math.isfinite(median_time(spec, speed.time)):
        return ""
    return (f"; spectral has not {speed.reached} on seed{'s' if len(missed) > 1 else ''} "
            f"{', '.join(map(str, missed))} of {len(spec)}: a {against} that has counts there as its time over "
            "spectral's training seconds")


def decide_speed(spec: list[Record], bases: dict[str, list[Record]], claim: str = "C1") -> tuple[str, dict, str]:
    """C1 (or C1 kept, on its time: SPEEDS[claim]) against the baselines: (verdict, baseline -> Ratio, why)."""
    verdict, ratios, why = _combine(*_speed_findings(spec, bases, THRESHOLDS[claim], SPEEDS[claim]),
                                    THRESHOLDS[claim])
    return verdict, ratios, why + _spectral_missed(spec, SPEEDS[claim]) if ratios else why


def decide_ratio(spec: list[Record], bases: dict[str, list[Record]], claim: str, what: str) -> tuple[str, dict, str]:
    """C2 and C3: the paired ratios SEED_RATIOS[claim] (of a measure where lower is better) against the claim's
    threshold."""
    return _combine(*_ratio_findings(spec, bases, SEED_RATIOS[claim], THRESHOLDS[claim], what), THRESHOLDS[claim])


def versus(rival: str, measure: str) -> str:
    """The name of a rival's ratio on one of RIVAL_MEASURES in the rivals verdict (its column in the tables)."""
    return f"{rival}: {measure}"


def decide_rivals(spec: list[Record], rivals: dict[str, list[Record]]) -> tuple[str, dict, str]:
    """spectral against the rivals: C1's rule on time to target and C2's on test MSE, both at RIVALS_CLAIM (1x);
    (verdict, versus(rival, measure) -> Ratio in rival then measure order, why)."""
    findings = dict(zip(RIVAL_MEASURES, (_speed_findings(spec, rivals, RIVALS_CLAIM, SPEEDS["C1"]),
                                         _ratio_findings(spec, rivals, SEED_RATIOS["C2"], RIVALS_CLAIM, "test MSE"))))
    ratios = {versus(b, m): findings[m][0][b] for b in rivals for m in RIVAL_MEASURES}
    fails = [f"{m}: {why}" for m in RIVAL_MEASURES for why in findings[m][1]]
    why_open = [f"{m}: {why}" for m in RIVAL_MEASURES for why in findings[m][2]]
    verdict, ratios, why = _combine(ratios, fails, why_open, RIVALS_CLAIM, "rival")
    return verdict, ratios, why + _spectral_missed(spec, SPEEDS["C1"], "rival") if ratios else why


def _combine(ratios: dict, fails: list[str], why_open: list[str], threshold: float,
             against: str = "baseline") -> tuple[str, dict, str]:
    """(verdict, ratios, why) from what each comparison found: fails if any failed, else inconclusive if any is
    open, else holds; "not measured" with no comparison (no `against` runs)."""
    if not ratios:
        return "not measured", ratios, f"no {against} runs"
    if fails:
        return "fails", ratios, f"below {threshold:g}x: " + "; ".join(fails)
    if why_open:
        return "inconclusive", ratios, "; ".join(why_open)
    return "holds", ratios, f">= {threshold:g}x against every {against}"


def cells(records: list[Record], role: str = "baseline"
          ) -> list[tuple[str, str, list[Record] | None, dict[str, list[Record]]]]:
    """The headline comparisons: (system, regime, spectral's runs or None, {trainer of `role`: runs} in registry
    order), sorted by system and regime. What the verdicts and the overview figures both iterate over: with the
    default role, against the paper's baselines; with "rival", against the rivals."""
    spectral, roles = candidate(records), roles_in(records)
    return [(system, regime, per.get(spectral), {t: rs for t, rs in per.items() if roles[t] == role})
            for system, regime, per in per_cell(records)]


def median_test_nmse(runs: list[Record]) -> dict[str, float]:
    """trainer -> its median test NMSE over its seeds with a model to judge (`measures.judged`; a model with no test
    error counting as +inf); +inf for a trainer without one."""
    by_trainer: dict[str, list] = defaultdict(list)
    for r in runs:
        by_trainer[r.trainer] += [r.test_nmse] if measures.judged(r) else []
    return {t: median(values) if values else math.inf for t, values in by_trainer.items()}


def _candidate_not_useful(spec: list[Record]) -> str:
    """What a speed verdict's reason adds where some trainer of the cell learned a useful model but the candidate
    did not (its median test NMSE >= USEFUL_NMSE): the model that reached the target does not generalise, which C2
    judges. Empty where the candidate's model is useful."""
    nmse = min(median_test_nmse(spec).values(), default=math.inf)  # spec: one trainer's runs
    if nmse < USEFUL_NMSE:
        return ""
    return (f"; {spec[0].trainer}'s own model is not useful on the test data (median test NMSE "
            f"{fmt(nmse) if math.isfinite(nmse) else 'none'}, >= {USEFUL_NMSE:g}): the speed is to a training target "
            f"its model does not generalise from (see C2)")


def no_useful_model(runs: list[Record]) -> str | None:
    """Why no trainer of `runs` (one (system, regime), every role) learned a useful model: each trainer's median test
    NMSE over its seeds with a model to judge (`measures.judged`; a model with no test error counting as +inf) is
    >= USEFUL_NMSE, a trainer without one counting as not useful. None where some trainer's is below."""
    nmse = median_test_nmse(runs)
    best = min(sorted(nmse, key=trainer_order), key=nmse.get, default=None)
    if best is None or nmse[best] < USEFUL_NMSE:
        return None
    if not math.isfinite(nmse[best]):
        return "no trainer learned a useful model here: no run left a model with a test NMSE"
    return (f"no trainer learned a useful model here: the best median test NMSE is {fmt(nmse[best])} ({best}), and "
            f"every trainer's is >= {USEFUL_NMSE:g}")


def _final_model_note(runs: list[Record]) -> str:
    """What C2's reason adds where some ok run has no best checkpoint (a record made before the best-checkpoint
    rule): its test errors are those of the final model. Empty where every ok run has one."""
    ok = [r for r in runs if r.ok]
    old = sum(r.best_checkpoint is None for r in ok)
    if not old:
        return ""
    runs_ = "every run's" if old == len(ok) else f"{old} of {len(ok)} runs'"
    return f"; {runs_} test errors are those of the final model (records made before the best-checkpoint rule)"


HEADLINE = ("C1", KEPT, "C2", "C3")  # the claims judged in each headline (system, regime), in CLAIMS order
NEED_A_USEFUL_MODEL = ("C1", KEPT, "C2", RIVALS)  # "no useful model" where no trainer learned one


def useless_cells(records: list[Record]) -> dict[tuple[str, str], str]:
    """(system, regime) -> why no trainer learned a useful model there (`no_useful_model`), for the cells where none
    did."""
    in_cell = grouped(table(records), ["system", "regime"])
    return {cell: why for cell, runs in in_cell.items() if (why := no_useful_model(runs))}


DECIDED = ("holds", TRAINING_ONLY, "fails")  # the verdicts that decide a claim, one way or the other


@lru_cache(maxsize=1)
def reference_seeds() -> int:
    """How many seeds the reference decides its verdicts on: the paper preset's."""
    return load_preset(REFERENCE_PRESET).seeds


def _indicative(v: Verdict, spec: list[Record] | None) -> Verdict:
    """`v`, marked indicative where it decides from fewer of spectral's seeds than the reference's."""
    n = len({r.seed for r in spec or []})
    if v.verdict not in DECIDED or n >= reference_seeds() or any(r.study for r in spec or []):
        return v  # a study's verdicts are judged by its own design (the regimes study's seeds), not the sweep's
    return replace(v, indicative=f"decided on {n} seed{'s' if n != 1 else ''}; the reference's verdicts use "
                                 f"{reference_seeds()}")


def claims(records: list[Record]) -> list[Verdict]:
    """C1, C1 kept, C2 and C3 per (system, regime) from the headline runs, then the rivals verdict in each
    (system, regime) with rival runs ("no useful model" for NEED_A_USEFUL_MODEL where no trainer learned one); C4
    and C5 come from the scaling studies (specbench.claims.study_verdicts)."""
    out = []
    useless = useless_cells(records)
    for system, regime, spec, bases in cells(records):
        if not spec:
            for c in HEADLINE:
                out.append(Verdict(c, system, regime, "not measured", {}, f"no {candidate(records)} runs"))
            continue
        if (system, regime) in useless:
            decided = {c: (USELESS, {}, useless[(system, regime)]) for c in HEADLINE if c in NEED_A_USEFUL_MODEL}
        else:
            decided = {}
            not_useful = _candidate_not_useful(spec)
            for c in SPEEDS:
                verdict, ratios, why = decide_speed(spec, bases, c)
                decided[c] = TRAINING_ONLY if verdict == "holds" and not_useful else verdict, ratios, why + not_useful
            decided["C2"] = decide_ratio(spec, bases, "C2", "test MSE")
        verdict, ratios, why = decided["C2"]
        decided["C2"] = verdict, ratios, why + _final_model_note([*spec, *(r for rs in bases.values() for r in rs)])
        decided["C3"] = decide_ratio(spec, bases, "C3", "peak memory")
        out += [_indicative(Verdict(c, system, regime, *decided[c]), spec) for c in HEADLINE]
    for system, regime, spec, rivals in cells(records, "rival"):
        if not rivals:
            continue
        if not spec:
            out.append(Verdict(RIVALS, system, regime, "not measured", {}, f"no {candidate(records)} runs"))
        elif (system, regime) in useless:
            out.append(Verdict(RIVALS, system, regime, USELESS, {}, useless[(system, regime)]))
        else:
            out.append(_indicative(Verdict(RIVALS, system, regime, *decide_rivals(spec, rivals)), spec))
    return out


def seed_ratios_by_cell(records: list[Record], claim: str) -> dict[tuple[str, str], dict[str, list[SeedRatio]]]:
    """(system, regime) -> baseline -> the per-seed ratios of a headline claim: the
    numbers behind its verdicts, for the overview figures. A cell without spectral runs is left out; one where the
    claim's verdict is "no useful model" has no pairs."""
    useless = useless_cells(records) if claim in NEED_A_USEFUL_MODEL else {}
    return {(system, regime): {b: [] if (system, regime) in useless else SEED_RATIOS[claim](spec, runs)
                               for b, runs in bases.items()}
            for system, regime, spec, bases in cells(records) if spec}


def trainer_order(name: str) -> int:
    """Registry order (the built-ins as `specbench.trainers` lists them, then plugins'); unknown names last. Reads
    names only: no trainer is loaded."""
    names = TRAINERS.names()
    return names.index(name) if name in names else len(names)


def roles_in(records: list[Record]) -> dict[str, str]:
    """trainer -> role, as the records say."""
    return {r.trainer: r.role for r in records}


def with_role(records: list[Record], *roles: str) -> list[str]:
    """The trainers of `records` whose role is one of `roles`, in registry order."""
    return sorted({r.trainer for r in records if r.role in roles}, key=trainer_order)


def candidate(records: list[Record]) -> str:
    """The method under test in `records`: the first trainer whose role is "candidate" ("" when none ran)."""
    names = with_role(records, ROLES[0])
    return names[0] if names else ""


def baselines_in(verdicts: list[Verdict]) -> list[str]:
    """What the verdicts' ratios are against, the report's columns: the baselines in registry order, then the rest
    (the rivals verdict's versus(rival, measure)) in the order the verdicts give them."""
    return sorted(dict.fromkeys(b for v in verdicts for b in v.ratios), key=trainer_order)
