"""The scaling studies' sections of the report: their tables, figures and the verdicts each decided (C3, C4, C5, low
data), which specbench.claims.study_verdicts decides and the report hands in.

Study records are ordinary run records with `study = {"name", "variable", "value", "series"}`
(specbench.running.studies).
"""
from __future__ import annotations

import math
from pathlib import Path

from specbench.claims.study_verdicts import fmt_exponent, memory, nfe, ok_runs, series_points, step_ms
from specbench.claims.verdicts import MARK, NOT_REACHED, Verdict, exponent, fmt, median, trainer_order
from specbench.core import measures
from specbench.core.records import Record, record_settings
from specbench.core.table import grouped, table
from specbench.report import figures


def training_peak(r: Record) -> float | None:
    """The peak growth during training alone (MiB), without what setup built."""
    return None if r.peak_memory_bytes is None else r.peak_memory_bytes / 2 ** 20


# ---- tables and figures -------------------------------------------------------------------------------------------

def _table(points_by_series: dict, fmt_value=fmt, with_exponent=True) -> tuple[list[str], list[list[str]]]:
    """Series against the swept value: a median where every seed reached it (+inf, a time never reached, written
    NOT_REACHED), 'n/a' where no run has a value."""
    xs = sorted({x for pts in points_by_series.values() for x, _ in pts})
    head = ["series", *[f"{x:g}" for x in xs]] + (["exponent"] if with_exponent else [])
    rows = []
    for series, pts in points_by_series.items():
        values = dict(pts)
        rows.append([series, *[("n/a" if values.get(x) is None else NOT_REACHED if values[x] == math.inf
                                else fmt_value(values[x])) for x in xs]] +
                    ([fmt_exponent(exponent(pts))] if with_exponent else []))
    return head, rows


def _settings(records) -> tuple:
    """Each series' settings, with the keys that change along the sweep named rather than listed (folded)."""
    import json

    rows = []
    for series in dict.fromkeys(r.study.series for r in records):
        cfgs = [record_settings(r, ("system_params", "model")) for r in records if r.study.series == series]
        varies = sorted({k for c in cfgs for k in c if any(o.get(k) != c.get(k) for o in cfgs)})
        fixed = {k: v for k, v in cfgs[0].items() if k not in varies}
        rows.append([series, "`" + json.dumps(fixed, sort_keys=True, separators=(",", ":")) + "`",
                     ", ".join(varies) or "-"])
    return ("details", f"Settings of each of {len(rows)} series",
            [("table", ["series", "settings", "varies along the sweep"], rows)])


def _failures(records):
    bad = [r for r in records if r.status != "ok"]
    if not bad:
        return []
    return [("p", "Not ok: " + "; ".join(f"{r.study.series} at {r.study.variable}="
                                       f"{r.study.value} ({r.status}: {r.error})" for r in bad))]


def _verdicts_box(verdicts: list[Verdict]) -> list[tuple]:
    """The claims a study decides, each with its reason, above its figure."""
    if not verdicts:
        return []
    return [("box", "What it decides", [f"{MARK[v.verdict]} **{v.claim} {v.verdict}**, {v.system} "
                                        f"({v.label or v.regime}): {v.why}" for v in verdicts])]


FIGURE_QUANTITIES = ("memory (MiB)", "time per iteration (ms)", "network evaluations per iteration")


def _quantities(ok: list[Record], values: dict, against: str, xlabel: str, path: Path,
                caption: str) -> list[tuple]:
    """One log-log figure of the quantities in FIGURE_QUANTITIES, then a table per quantity against the swept
    variable (with exponents, except for times to target), folded; each quantity's series are computed once."""
    points = {name: series_points(ok, value, unreached="time to" in name) for name, value in values.items()}
    tables = []
    for name, pts in points.items():
        tables.append(("p", f"**{name}** against {against}:"))
        tables.append(("table", *_table(pts, with_exponent="time to" not in name)))
    panels = {name: points[name] for name in FIGURE_QUANTITIES if name in points}
    return [("fig", figures.scaling(panels, xlabel, path), caption),
            ("details", f"Tables: {', '.join(points)} against {against}, medians over seeds", tables)]


def horizon_blocks(records, verdicts, fig_dir: Path) -> list[tuple]:
    ok = ok_runs(records)
    system = records[0].system
    b = [("h2", f"Horizon study ({system})"),
         ("p", "Trajectories of the same sampling interval and growing length; the solver baselines with their tuned "
               "segments and, marked 'whole trajectories' (dashed), on every whole trajectory at once, as in the "
               "paper's memory argument. Medians over seeds; 'exponent' is the least-squares slope of log value "
               "against log n (value ~ n^exponent). Memory is what the trainer built in setup plus its peak growth "
               "in training (RSS on CPU, after a warm-up, evaluations excluded, each baseline taken on a trimmed "
               "heap). RSS moves in pages and the training peak includes what the allocator keeps between "
               "allocations, so values under about 2 MiB are mostly that residue and their exponents say little."),
          *_verdicts_box(verdicts)]
    b += _quantities(ok, {"memory (MiB)": memory, "of which the training peak (MiB)": training_peak,
                          "time per iteration (ms)": step_ms, "network evaluations per iteration": nfe},
                     "the number of observation times n", "observation times per trajectory n",
                     fig_dir / "study-horizon.png",
                     "Cost against trajectory length (log-log; the fitted exponents are in the tables). Dashed: "
                     "solver baselines on whole trajectories.")
    return b + [_settings(records)] + _failures(records)


def state_size_blocks(records, verdicts, fig_dir: Path) -> list[tuple]:
    ok = ok_runs(records)
    b = [("h2", "State-size study (network)"),
         ("p", "N coupled oscillators (2N states), every trainer with its tuned settings, dense data. Medians over "
               "seeds; exponents are log-log slopes in N."), *_verdicts_box(verdicts)]
    b += _quantities(ok, {"memory (MiB)": memory, "of which the training peak (MiB)": training_peak,
                          "time per iteration (ms)": step_ms, "time to target (s)": measures.time_to_target,
                          "test MSE": measures.test_mse},
                     "N", "oscillators N", fig_dir / "study-state-size.png",
                     "Cost against the number of oscillators (log-log; the fitted exponents are in the tables).")
    return b + [_settings(records)] + _failures(records)


def order_blocks(records, verdicts, fig_dir: Path) -> list[tuple]:
    ok = ok_runs(records)
    b = [("h2", "Order study"),
         ("p", "The representation error is the unregularised least-squares fit of the mesh to the training "
               "observations, evaluated on a grid 4x finer, as its maximum error against the clean trajectory "
               "relative to the trajectory's maximum (float64). Beside it, the spectral trainer with that E and p: "
               "time to target and test MSE."), *_verdicts_box(verdicts)]
    p_rs = [r for r in ok if r.study.variable == "p"]
    e_rs = [r for r in ok if r.study.variable == "E"]
    b.append(("fig", figures.order(series_points(p_rs, lambda r: r.representation_error),
                                   series_points(e_rs, lambda r: r.representation_error),
                                   fig_dir / "study-order.png"),
              "Representation error against p (semi-log: a straight line is exponential convergence) and against "
              "E (log-log: a straight line is algebraic convergence)."))
    tables = []
    for variable, label in (("p", "Legendre order p"), ("E", "element count E")):
        rs = [r for r in ok if r.study.variable == variable]
        for title, value in (("representation error", lambda r: r.representation_error),
                             ("time to target (s)", measures.time_to_target),
                             ("test MSE", measures.test_mse)):
            if rs:
                tables.append(("p", f"**{title}** against {label}:"))
                tables.append(("table", *_table(series_points(rs, value, unreached="time to" in title),
                                                with_exponent=False)))
    b.append(("details", "Tables: representation error, time to target and test MSE against p and E", tables))
    return b + [_settings(records)] + _failures(records)


def regimes_blocks(records, verdicts, fig_dir: Path) -> list[tuple]:
    b = [("h2", "Regimes study"),
         ("p", "Dense against sparse sampling at three noise levels (relative to each state's standard deviation); "
               "test MSE of rollouts from held-out initial states, median over seeds. The per-seed ratios behind "
               "its verdicts are drawn in the overview (low data)."), *_verdicts_box(verdicts)]
    panels, tables = {}, []
    for system in sorted({r.system for r in records}):
        # every run with a model to judge, as the verdicts take them (measures.test_mse: None for the others)
        rs = [r for r in records if r.system == system and measures.judged(r)]
        cells = sorted({(r.regime, float(r.study.value)) for r in rs})
        trainers = sorted({r.trainer for r in rs}, key=trainer_order)
        grid = {}
        for t in trainers:
            values = [[measures.test_mse(r) for r in rs if r.trainer == t and
                       (r.regime, float(r.study.value)) == c] for c in cells]
            grid[t] = [median([v for v in vs if v is not None]) if any(v is not None for v in vs) else None
                       for vs in values]
        labels = [f"{g}, noise {n:g}" for g, n in cells]
        panels[system] = (grid, labels)
        tables.append(("p", f"**{system}**: test MSE"))
        tables.append(("table", ["trainer", *labels], [[t, *[fmt(x) if x is not None else "n/a" for x in v]]
                                                       for t, v in grid.items()]))
    b.append(("fig", figures.cells(panels, "test MSE (state units²)", fig_dir / "study-regimes.png"),
              "Test MSE per trainer in each sampling regime and noise level, a panel per system (log scale)."))
    b.append(("details", "Tables: test MSE per trainer and cell, medians over seeds", tables))
    return b + [_settings(records)] + _failures(records)


BLOCKS = {"horizon": horizon_blocks, "state-size": state_size_blocks, "order": order_blocks,
          "regimes": regimes_blocks}


def study_blocks(records: list[Record], verdicts: list[Verdict], fig_dir: Path) -> list[tuple]:
    """A section per study present, in BLOCKS order, each with the verdicts it decided (`verdicts`: those
    `study_verdicts` gave for these records)."""
    studies = grouped(table(records), "study")
    return [blk for name in sorted(studies, key=lambda name: list(BLOCKS).index(name) if name in BLOCKS else 99)
            for blk in BLOCKS.get(name, lambda *_: [])(studies[name], [v for v in verdicts if v.study == name],
                                                        fig_dir)]
