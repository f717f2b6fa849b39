"""The scaling studies in the report: their tables, figures and the verdicts they decide (C3, C4, C5, low data).

Study records are ordinary run records with `study = {"name", "variable", "value", "series"}`
(specbench.running.studies). Verdicts are pure functions of the records; growth is summarised by fitted exponents
(log-log slopes), printed beside every verdict that uses them.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from specbench.claims.verdicts import (MARK, NOT_REACHED, Ratio, Verdict, candidate, claims, exponent, fmt, median,
                                       trainer_order, with_role)
from specbench.core import measures
from specbench.core.records import Record, Study
from specbench.core.table import grouped, table
from specbench.report import figures
from specbench.running.studies import MINIBATCH, WHOLE


def series_points(records: list[Record], value, unreached: bool = False) -> dict[str, list[tuple[float, float | None]]]:
    """series -> [(swept value, median over seeds of value(record))], the series in registry order of their
    trainers, each sorted by the swept value: a group-by of the records' table on (series, value). A None is no
    value (left out of the median), or with `unreached` a time never reached (+inf in the median, as in the
    headline tables)."""
    t = table(records).assign(order=[trainer_order(r.study.base) for r in records])
    out: dict[str, list] = {}
    for (series, x), rows in t.sort_values(["order", "series", "value"]).groupby(["series", "value"], sort=False):
        values = [value(r) for r in rows["record"]]
        present = values if unreached else [v for v in values if v is not None]
        out.setdefault(series, []).append((float(x), median(present) if present else None))
    return out


def fmt_exponent(x: float | None) -> str:
    """A growth exponent to two decimals ('0.00' rather than '-5.6e-17')."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x + 0.0:.2f}".replace("-0.00", "0.00")


def memory(r: Record) -> float | None:
    """The peak memory measure (setup + training peak), in MiB."""
    m = measures.peak_memory(r)
    return None if m is None else m / 2 ** 20


def training_peak(r: Record) -> float | None:
    """The peak growth during training alone (MiB), without what setup built."""
    return None if r.peak_memory_bytes is None else r.peak_memory_bytes / 2 ** 20


def step_ms(r: Record) -> float | None:
    s = measures.time_per_iteration(r)
    return None if s is None else 1e3 * s


nfe = measures.nfe


def _ok(records):
    return [r for r in records if r.status == "ok"]


# ---- verdicts ----------------------------------------------------------------------------------------------------

def horizon_verdicts(records: list[Record]) -> list[Verdict]:
    """C3 (memory at the longest horizon, with growth exponents) and C4 (an iteration's sequential depth)."""
    ok = _ok(records)
    if not ok:
        return []
    longest = max(r.study.value for r in ok)
    system, regime = ok[0].system, ok[0].regime
    mem, depth = series_points(ok, memory), series_points(ok, nfe)
    slopes = {s: exponent(p) for s, p in mem.items()}
    at_end = {s: dict(p).get(float(longest)) for s, p in mem.items()}
    out = []
    spectral = candidate(ok)
    baselines = with_role(ok, "baseline")
    batched = Study.label(spectral, MINIBATCH)
    variants = [(spectral, "", "")] + ([(batched, ", element mini-batches", ", mini-batches")]
                                       if batched in mem else [])
    for (label, variant, short), (spec, spec_label, spec_short) in itertools.product(
            (("whole trajectories", WHOLE, "whole"), ("tuned segments", "", "segments")), variants):
        ratios = {b: _ratio(at_end.get(Study.label(b, variant)), at_end.get(spec)) for b in baselines
                  if Study.label(b, variant) in mem}
        worse = [b for b, r in ratios.items() if not r.value >= 1]
        why = (f"{spec} uses more memory than {', '.join(worse)}" if worse else
               f"{spec} uses less memory than every baseline") + \
            f" at {longest:g} observation times; memory exponents: {spec} {fmt_exponent(slopes.get(spec))}, " + \
            ", ".join(f"{b} {fmt_exponent(slopes.get(Study.label(b, variant)))}" for b in ratios)
        out.append(Verdict("C3", system, f"horizon study, {label}{spec_label}", "fails" if worse else "holds",
                           ratios, why, column="C3 at scale", sampling=regime, label=f"horizon, {short}{spec_short}"))
    spec_depth = exponent(depth.get(spectral, []))
    whole = {b: Study.label(b, WHOLE) for b in baselines}
    ratios = {b: _ratio(dict(depth.get(whole[b], [])).get(float(longest)), dict(depth[spectral]).get(float(longest)))
              for b in baselines if whole[b] in depth} if spectral in depth else {}
    times = series_points(ok, step_ms)
    why = f"network evaluations per iteration grow as n^{fmt_exponent(spec_depth)} for spectral (" + \
        ", ".join(f"{b} n^{fmt_exponent(exponent(depth[whole[b]]))}" for b in baselines if whole[b] in depth) + \
        f" on whole trajectories); wall time per iteration on this machine grows as n^" \
        f"{fmt_exponent(exponent(times.get(spectral, [])))} for spectral, because its work still grows with n"
    verdict = "inconclusive" if math.isnan(spec_depth) else "holds" if spec_depth < 0.1 else "fails"
    out.append(Verdict("C4", system, "horizon study", verdict, ratios, why, sampling=regime))
    return out


def _ratio(base: float | None, spec: float | None) -> Ratio:
    if base is None or spec is None or not spec > 0:
        return Ratio(math.nan)
    return Ratio(base / spec)


def decay(points: list[tuple[float, float | None]]) -> dict:
    """How an error falls with p: up to its minimum (the floor), the fall (max / min), the exponential rate
    (decades per unit of p, from log10 err = a - rate * p) and whether an exponential fits better than a power law
    (log err linear in p rather than in log p), by the residual of each least-squares line."""
    pts = [(x, y) for x, y in points if y is not None and y > 0]
    if len(pts) < 3:
        return {"fall": math.nan, "rate": math.nan, "exponential": False, "floor_at": math.nan}
    k = int(np.argmin([y for _, y in pts]))
    head = pts[: k + 1] if k >= 2 else pts
    x, ly = np.array([p[0] for p in head]), np.log10([p[1] for p in head])
    exp_fit = np.polyfit(x, ly, 1, full=True)
    pow_fit = np.polyfit(np.log10(x), ly, 1, full=True)
    return {"fall": head[0][1] / head[-1][1], "rate": float(-exp_fit[0][0]),
            "exponential": _residual(exp_fit) < _residual(pow_fit),
            "floor_at": head[-1][0], "floor": head[-1][1]}


def _residual(fit) -> float:
    """The residual sum of squares of np.polyfit(..., full=True) (empty when the fit is exact)."""
    return float(fit[1][0]) if len(fit[1]) else 0.0


def order_verdicts(records: list[Record]) -> list[Verdict]:
    """C5 for each noiseless p-sweep series: holds when the error falls >= 1000x, exponentially in p."""
    out = []
    sweeps = [r for r in records if r.study.variable == "p" and r.representation_error is not None]
    regime = {r.study.series: r.regime for r in sweeps}
    for series, points in series_points(sweeps, lambda r: r.representation_error).items():
        d = decay(points)
        noisy = not series.endswith("noise 0")
        why = f"error falls {fmt(d['fall'])}x from p={points[0][0]:g} to its floor {fmt(d.get('floor'))} at " \
              f"p={d['floor_at']:g}, {fmt(d['rate'])} decades per order; " + \
              ("an exponential in p fits better than a power law" if d["exponential"] else
               "a power law in p fits as well as an exponential")
        system, _, label = series.partition(", ")
        place = {"sampling": regime[series], "label": label}
        if noisy:
            out.append(Verdict("C5", system, f"order study, {series}", "inconclusive", {},
                               why + " (noisy data: the floor is the noise, shown, not judged)", **place))
            continue
        holds = d["fall"] >= 1e3 and d["exponential"]
        out.append(Verdict("C5", system, f"order study, {series}", "holds" if holds else "fails", {}, why,
                           **place))
    return out


def regimes_verdicts(records: list[Record]) -> list[Verdict]:
    """C2 in every (regime, noise) cell of the regimes study: the low-data claim is C2 in the sparse cells."""
    cell = {f"regimes study, {r.regime}, noise {float(r.study.value):g}":
            (r.regime, f"noise {float(r.study.value):g}") for r in records}
    return [replace(v, column="low data", sampling=cell[v.regime][0], label=cell[v.regime][1])
            for v in claims(regimes_relabelled(records)) if v.claim == "C2"]


def regimes_relabelled(records: list[Record]) -> list[Record]:
    """The regimes study's records with each (regime, noise) cell as its regime, for the headline verdict rules
    and their per-seed ratios."""
    return [replace(r, regime=f"regimes study, {r.regime}, noise {float(r.study.value):g}") for r in records]


def state_size_verdicts(records: list[Record]) -> list[Verdict]:
    """C3 at the largest N of the state-size study, with memory exponents in N."""
    ok = _ok(records)
    if not ok:
        return []
    largest = float(max(r.study.value for r in ok))
    mem = series_points(ok, memory)
    ratios = {b: _ratio(dict(mem.get(b, [])).get(largest), dict(mem.get(candidate(ok), [])).get(largest))
              for b in with_role(ok, "baseline") if b in mem}
    worse = [b for b, r in ratios.items() if not r.value >= 1]
    why = (f"spectral uses more memory than {', '.join(worse)}" if worse else
           "spectral uses less memory than every baseline") + f" at N = {largest:g}; memory exponents in N: " + \
        ", ".join(f"{s} {fmt_exponent(exponent(p))}" for s, p in mem.items())
    return [Verdict("C3", ok[0].system, f"state-size study, N = {largest:g}", "fails" if worse else "holds",
                    ratios, why, column="C3 at scale", sampling=ok[0].regime, label=f"N = {largest:g}")]


VERDICTS = {"horizon": horizon_verdicts, "state-size": state_size_verdicts, "order": order_verdicts,
            "regimes": regimes_verdicts}


def study_verdicts(records: list[Record]) -> list[Verdict]:
    """The verdicts of every study present (each with its `study`), and C4 and C5 as not measured where their study
    is missing. The report computes them once and hands them to `study_blocks`."""
    studies = grouped(table(records), "study")
    out = [replace(v, study=name) for name, rs in studies.items() for v in VERDICTS.get(name, lambda _: [])(rs)]
    for claim, study in (("C4", "horizon"), ("C5", "order")):
        if study not in studies:
            out.append(Verdict(claim, "-", "-", "not measured", {},
                               f"needs the {study} study: `specbench study {study}`, then `specbench report DIR "
                               f"--studies STUDY_DIR`"))
    return out


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

    skip = ("env", "system_params", "data", "cadence", "model")
    rows = []
    for series in dict.fromkeys(r.study.series for r in records):
        cfgs = [{k: v for k, v in r.config.items() if k not in skip} for r in records
                if r.study.series == series]
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
    ok = _ok(records)
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
    ok = _ok(records)
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
    ok = _ok(records)
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
