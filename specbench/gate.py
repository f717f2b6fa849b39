"""`specbench gate BASELINE_DIR CANDIDATE_DIR`: exit 1 when the candidate regressed on any measure.

For each (system, regime, trainer) in the baseline it compares the medians over seeds of: time to target,
per-iteration time, test MSE and peak memory. A measure is worse when candidate / baseline > factor (all four are
lower-is-better); a candidate run that is missing, or failed where the baseline's was ok, is a regression and is
named. Time to target not reached counts as +inf: reached -> not reached is a regression. Study records (from
`specbench study`) are compared point by point.
"""
from __future__ import annotations

import math
from pathlib import Path

from specbench import measures
from specbench.errors import UsageError
from specbench.report.verdicts import fmt, group, median
from specbench.results import load_sweep

MEASURES = {  # the same definitions the report uses (specbench.measures)
    "time to target": measures.time_to_target,
    "time / iteration": measures.time_per_iteration,
    "test MSE": measures.test_mse,
    "peak memory": measures.peak_memory,
}


def compare(base: dict, cand: dict, factor: float) -> tuple[list[list[str]], list[str]]:
    """Table rows and the list of regressions (one line each)."""
    rows, regressions = [], []
    for key in sorted(base):
        name = " / ".join(key)
        b_runs = base[key]
        c_runs = cand.get(key, [])
        if not c_runs:
            rows.append([name, "all", "-", "-", "-", "MISSING"])
            regressions.append(f"{name}: no runs in the candidate")
            continue
        lost = {r["seed"] for r in b_runs if r["status"] == "ok"} - {r["seed"] for r in c_runs if r["status"] == "ok"}
        if lost:
            rows.append([name, "status", "ok", "not ok", "-", "WORSE"])
            regressions.append(f"{name}: seeds {sorted(lost)} ok in the baseline, failed or missing in the candidate")
        for measure, get in MEASURES.items():
            b = median(get(r) for r in b_runs)
            c = median(get(r) for r in c_runs)
            if math.isnan(b) or math.isnan(c):
                continue
            if math.isinf(b) and math.isinf(c):
                ratio = 1.0
            elif math.isinf(c) or b == 0:
                ratio = math.inf if c > b else 1.0
            else:
                ratio = c / b
            state = "worse" if ratio > factor else "better" if ratio < 1 / factor else "same"
            rows.append([name, measure, fmt(b), fmt(c), fmt(ratio), state.upper() if state == "worse" else state])
            if state == "worse":
                regressions.append(f"{name}: {measure} {fmt(b)} -> {fmt(c)} ({fmt(ratio)}x > {factor:g}x)")
    return rows, regressions


def points(records: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    """`group`, with each study point (study, swept value, series) kept apart in the regime: a study's runs at
    different values of its variable are not seeds of one run."""
    def labelled(r):
        st = r.get("study")
        return {**r, "regime": f"{r['regime']} [{st['name']} {st['variable']}={st['value']} {st['series']}]"} if st \
            else r
    return group([labelled(r) for r in records])


def gate(baseline_dir: Path, candidate_dir: Path, factor: float = 1.25) -> int:
    if not factor >= 1:
        raise UsageError(f"--factor must be >= 1, got {factor}")
    rows, regressions = compare(points(load_sweep(baseline_dir)[0]), points(load_sweep(candidate_dir)[0]), factor)
    head = ["system / regime / trainer", "measure", "baseline", "candidate", "ratio", "verdict"]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    if regressions:
        print(f"\n{len(regressions)} regression(s) beyond {factor:g}x:")
        for line in regressions:
            print(f"  {line}")
        return 1
    print(f"\nno regression beyond {factor:g}x")
    return 0
