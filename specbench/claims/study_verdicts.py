"""The scaling studies' verdicts (C3 at scale, C4, C5, low data): pure functions of study records, beside the
headline claims' rules (specbench.claims.verdicts), whose vocabulary, ratios and statistics they share.

Study records are ordinary run records with `study = {"name", "variable", "value", "series"}`
(specbench.running.studies). Growth is summarised by fitted exponents (log-log slopes), printed beside every verdict
that uses them; the report's study sections (specbench.report.study_sections) draw the same points.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np

from specbench.claims.verdicts import Ratio, Verdict, candidate, claims, exponent, fmt, median, trainer_order, with_role
from specbench.core import measures
from specbench.core.records import Record, Study
from specbench.core.table import grouped, table
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


def step_ms(r: Record) -> float | None:
    s = measures.time_per_iteration(r)
    return None if s is None else 1e3 * s


nfe = measures.nfe


def ok_runs(records: list[Record]) -> list[Record]:
    return [r for r in records if r.status == "ok"]


def horizon_verdicts(records: list[Record]) -> list[Verdict]:
    """C3 (memory at the longest horizon, with growth exponents) and C4 (an iteration's sequential depth)."""
    ok = ok_runs(records)
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
    ok = ok_runs(records)
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


# each study's verdict rule: study name -> the verdicts its records decide
STUDY_RULES = {"horizon": horizon_verdicts, "state-size": state_size_verdicts, "order": order_verdicts,
               "regimes": regimes_verdicts}


def study_verdicts(records: list[Record]) -> list[Verdict]:
    """The verdicts of every study present (each with its `study`), and C4 and C5 as not measured where their study
    is missing. A report decides them once, with the headline claims (`claims`), and hands both to its sections."""
    studies = grouped(table(records), "study")
    out = [replace(v, study=name) for name, rs in studies.items() for v in STUDY_RULES.get(name, lambda _: [])(rs)]
    for claim, study in (("C4", "horizon"), ("C5", "order")):
        if study not in studies:
            out.append(Verdict(claim, "-", "-", "not measured", {},
                               f"needs the {study} study: `specbench study {study}`, then `specbench report DIR "
                               f"--studies STUDY_DIR`"))
    return out
