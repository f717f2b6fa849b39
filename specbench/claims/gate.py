"""`specbench gate BASELINE CANDIDATE`: exit 1 when the candidate regressed.

Two directories of run records: for each (system, regime, trainer) in the baseline it compares, over seeds,
time to target, per-iteration time, test MSE and peak memory (all lower-is-better). A measure is worse when the
ratio of medians candidate / baseline is beyond `factor` (the size that matters) *and* a one-sided Mann-Whitney U
test over the seeds says the candidate's values are larger with p < alpha (beyond the noise; alpha 0.05 by
default). With too few seeds for the test ever to reach alpha (fewer than 4 a side at 0.05) the factor alone
decides, as asv does with one sample, and the verdict says so. A candidate run that is missing, or failed where
the baseline's was ok, is a regression and is named. Time to target not reached counts as +inf: reached -> not
reached is a regression. Study records (from `specbench study`) are compared point by point.

Two work files (`specbench work --out`): every value compared exactly, the float32 metric within the files'
relative tolerance (`compare_work`); `specbench work --check` uses the same comparison.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from scipy.special import comb
from scipy.stats import mannwhitneyu

from specbench.claims.verdicts import fmt, group, median
from specbench.core import measures, workfile
from specbench.core.defaults import GATE_FACTOR
from specbench.core.errors import UsageError
from specbench.core.records import Record, load_sweep
from specbench.running.studies import vocabulary

MEASURES = {  # the same definitions the report uses (specbench.core.measures)
    "time to target": measures.time_to_target,
    "time / iteration": measures.time_per_iteration,
    "test MSE": measures.test_mse,
    "peak memory": measures.peak_memory,
}
ALPHA = 0.05  # the rank test's level; the factor is the second condition a regression must meet


def decide(base: list, cand: list, factor: float, alpha: float = ALPHA) -> tuple[str, float, float | None]:
    """(verdict, ratio of medians, p) for samples of a lower-is-better measure (None counts as +inf). The
    verdict is "worse" or "better" when the ratio is beyond `factor` and a one-sided Mann-Whitney U test gives
    p < alpha, "noise" when the ratio is beyond it but the test is not, else "same". p is None when the samples
    are too few for the test ever to reach alpha: then the ratio alone decides."""
    b = [math.inf if x is None else float(x) for x in base]
    c = [math.inf if x is None else float(x) for x in cand]
    b, c = [x for x in b if not math.isnan(x)], [x for x in c if not math.isnan(x)]
    mb, mc = median(b), median(c)
    if not b or not c or math.isnan(mb) or math.isnan(mc):
        return "same", math.nan, None
    if math.isinf(mb) and math.isinf(mc):
        ratio = 1.0
    elif math.isinf(mc) or math.isinf(mb) or mb == 0:
        ratio = math.inf if mc > mb else 0.0 if mc < mb else 1.0
    else:
        ratio = mc / mb
    direction = "worse" if ratio > factor else "better" if ratio < 1 / factor else None
    if direction is None:
        return "same", ratio, None
    if 1 / comb(len(b) + len(c), len(b)) >= alpha:  # the smallest p the exact test can give
        return direction, ratio, None
    p = float(mannwhitneyu(c, b, alternative="greater" if direction == "worse" else "less").pvalue)
    return (direction if p < alpha else "noise"), ratio, p


def compare(base: dict, cand: dict, factor: float, alpha: float = ALPHA,
            only: tuple[str, ...] | None = None) -> tuple[list[list[str]], list[str]]:
    """Table rows and the list of regressions (one line each), over the measures named in `only` (all when
    None)."""
    rows, regressions = [], []
    for key in sorted(base):
        name = " / ".join(key)
        b_runs = base[key]
        c_runs = cand.get(key, [])
        if not c_runs:
            rows.append([name, "all", "-", "-", "-", "-", "MISSING"])
            regressions.append(f"{name}: no runs in the candidate")
            continue
        lost = {r.seed for r in b_runs if r.status == "ok"} - {r.seed for r in c_runs if r.status == "ok"}
        if lost:
            rows.append([name, "status", "ok", "not ok", "-", "-", "WORSE"])
            regressions.append(f"{name}: seeds {sorted(lost)} ok in the baseline, failed or missing in the candidate")
        for measure, get in MEASURES.items():
            if only is not None and measure not in only:
                continue
            bv, cv = [get(r) for r in b_runs], [get(r) for r in c_runs]
            b, c = median(bv), median(cv)
            if math.isnan(b) or math.isnan(c):
                continue
            state, ratio, p = decide(bv, cv, factor, alpha)
            stats = "factor only" if p is None and state != "same" else "-" if p is None else f"{p:.2g}"
            rows.append([name, measure, fmt(b), fmt(c), fmt(ratio), stats,
                         state.upper() if state == "worse" else state])
            if state == "worse":
                why = f"p={p:.2g} < {alpha:g}" if p is not None else \
                    f"factor only: {len(bv)} v {len(cv)} runs are too few for the rank test"
                regressions.append(f"{name}: {measure} {fmt(b)} -> {fmt(c)} ({fmt(ratio)}x > {factor:g}x, {why})")
    return rows, regressions


def points(records: list[Record]) -> dict[tuple[str, str, str], list[Record]]:
    """`group`, with each study point (study, swept value, series) kept apart in the regime: a study's runs at
    different values of its variable are not seeds of one run."""
    def labelled(r):
        st = r.study
        return replace(r, regime=f"{r.regime} [{st.name} {st.variable}={st.value} {st.series}]") if st else r
    return group([labelled(r) for r in records])


def sweep(directory: Path) -> list[Record]:
    """A sweep's records, every one of them: a record the gate cannot read would leave its trainer ungated, so it
    is a UsageError naming the file, not a warning."""
    records, warnings = load_sweep(directory, vocabulary())
    if warnings:
        more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
        raise UsageError(f"cannot gate on {directory}: {warnings[0]}{more}")
    return records


def print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


def report_work(rows: list[list[str]], mismatches: list[str]) -> int:
    """Print the exact comparison; 1 on any mismatch."""
    print_table(["system / trainer", "measure", "reference", "now", "verdict"], rows)
    if mismatches:
        print(f"\n{len(mismatches) - 1} work value(s) differ from the reference:")
        for line in mismatches:
            print(f"  {line}")
        return 1
    print("\nwork values equal to the reference")
    return 0


def gate(baseline: Path, candidate: Path, factor: float = GATE_FACTOR, alpha: float = ALPHA) -> int:
    if not factor >= 1:
        raise UsageError(f"--factor must be >= 1, got {factor}")
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha}")
    if Path(baseline).is_file() and Path(candidate).is_file():
        base, cand = workfile.read(baseline), workfile.read(candidate)
        if base["settings"] != cand["settings"]:
            raise UsageError(f"{baseline} and {candidate} were made with different settings: "
                             f"{base['settings']} and {cand['settings']}")
        return report_work(*workfile.compare(base, cand))
    rows, regressions = compare(points(sweep(baseline)), points(sweep(candidate)), factor, alpha)
    print_table(["system / regime / trainer", "measure", "baseline", "candidate", "ratio", "p", "verdict"], rows)
    if regressions:
        print(f"\n{len(regressions)} regression(s) beyond {factor:g}x and the noise:")
        for line in regressions:
            print(f"  {line}")
        return 1
    print(f"\nno regression beyond {factor:g}x and the noise")
    return 0
