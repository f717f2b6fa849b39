"""Verdicts for the paper's claims from run records: pure functions, no files, no figures.

Everything is decided on medians over seeds, with the spread (min..max) beside it (DESIGN.md). A time that was
not reached counts as +inf in the median; a speed-up against a baseline whose median never reached the target is a
lower bound (its training time over spectral's time to target), written "> x".
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

SPECTRAL = "spectral"
BASELINES = ("backprop-rk4", "backprop-dopri5", "adjoint-dopri5")
SPEEDUP_CLAIM = 10.0  # C1: at least 10x faster to a comparable loss
MSE_CLAIM = 10.0  # C2: test MSE one order of magnitude smaller

CLAIMS = {
    "C1": "speed: >= 10x faster to the target of the common metric",
    "C2": "generalisation: test MSE >= 10x smaller",
    "C3": "memory: smaller peak memory than each baseline",
    "C2 in the regimes study": "the paper's low-data claim, C2 in the sparse and noisy cells",
    "C4": "time-parallel: the network evaluations of an iteration (each one a sequential solver stage) do not grow "
          "with the horizon",
    "C5": "accuracy: representation error falls exponentially with the Legendre order",
}


@dataclass(frozen=True)
class Ratio:
    """spectral's advantage over one baseline: value > 1 favours spectral; lower=True means "> value"."""

    value: float
    lower: bool = False
    low: float = math.nan  # spread over seeds, where defined
    high: float = math.nan

    def __str__(self):
        if math.isnan(self.value):
            return "n/a"
        text = f"{'> ' if self.lower else ''}{fmt(self.value)}x"
        if not self.lower and math.isfinite(self.low) and math.isfinite(self.high) and self.low != self.high:
            text += f" ({fmt(self.low)}-{fmt(self.high)})"
        return text


@dataclass(frozen=True)
class Verdict:
    claim: str
    system: str
    regime: str
    verdict: str  # holds | fails | inconclusive
    ratios: dict  # baseline -> Ratio
    why: str


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


def group(records: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    """(system, regime, trainer) -> records over seeds, ordered by seed."""
    out = defaultdict(list)
    for r in records:
        out[(r["system"], r["regime"], r["trainer"])].append(r)
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in out.items()}


def time_to(r: dict, key: str | None = None) -> float | None:
    if r["status"] != "ok" and r["status"] != "timeout":
        return None
    return r["time_to_target_s"] if key is None else r["times_to_targets"].get(key)


def speedup(spec: list[dict], base: list[dict]) -> Ratio:
    """Median time to target of the baseline over spectral's, with per-seed spread."""
    ts, tb = median(time_to(r) for r in spec), median(time_to(r) for r in base)
    if not math.isfinite(ts):
        return Ratio(math.nan)
    if not math.isfinite(tb):
        budget = median(r["train_seconds"] for r in base if r["status"] == "ok") if base else math.nan
        # a diverged or failed baseline never reaches the target; bound by the budget it was given
        budget = budget if math.isfinite(budget) else median(r["config"].get("budget_s") for r in base)
        return Ratio(budget / ts, lower=True)
    per_seed = [time_to(b) / time_to(s) for s, b in zip(spec, base)
                if time_to(s) is not None and time_to(b) is not None]
    return Ratio(tb / ts, False, min(per_seed, default=math.nan), max(per_seed, default=math.nan))


def ratio_of(spec: list[dict], base: list[dict], field: str) -> Ratio:
    """Median of `field` for the baseline over spectral's (a failed baseline counts as +inf)."""
    vs = median(r[field] for r in spec if r.get(field) is not None)
    vb = median(r.get(field) for r in base)  # None (diverged) -> inf
    if not math.isfinite(vs) or vs <= 0 or math.isnan(vb):
        return Ratio(math.nan)
    per_seed = [b[field] / s[field] for s, b in zip(spec, base) if s.get(field) and b.get(field) is not None]
    return Ratio(vb / vs, math.isinf(vb), min(per_seed, default=math.nan), max(per_seed, default=math.nan))


def _decide(ratios: dict[str, Ratio], threshold: float) -> tuple[str, str]:
    if not ratios:
        return "inconclusive", "no baseline runs"
    if any(math.isnan(r.value) for r in ratios.values()):
        return "inconclusive", "spectral has no value to compare (did not reach the target or failed)"
    failing = [b for b, r in ratios.items() if r.value < threshold and not r.lower]
    if failing:
        return "fails", f"below {threshold:g}x against {', '.join(failing)}"
    short_bounds = [b for b, r in ratios.items() if r.lower and r.value < threshold]
    if short_bounds:
        return "inconclusive", f"{', '.join(short_bounds)} never reached the target, but the lower bound is " \
                               f"under {threshold:g}x: a longer budget could decide"
    return "holds", f">= {threshold:g}x against every baseline"


def claims(records: list[dict]) -> list[Verdict]:
    """C1-C3 per (system, regime) from the headline runs; C4 and C5 come from the scaling studies
    (specbench.report.studies)."""
    groups = group(records)
    out = []
    for system, regime in sorted({(s, g) for s, g, _ in groups}):
        spec = groups.get((system, regime, SPECTRAL))
        bases = {b: groups[(system, regime, b)] for b in BASELINES if (system, regime, b) in groups}
        if not spec:
            for c in ("C1", "C2", "C3"):
                out.append(Verdict(c, system, regime, "inconclusive", {}, "no spectral runs"))
        else:
            speed = {b: speedup(spec, v) for b, v in bases.items()}
            out.append(Verdict("C1", system, regime, *_verdict(speed, SPEEDUP_CLAIM), ))
            mse = {b: ratio_of(spec, v, "test_mse") for b, v in bases.items()}
            out.append(Verdict("C2", system, regime, *_verdict(mse, MSE_CLAIM)))
            mem = {b: ratio_of(spec, v, "peak_memory_bytes") for b, v in bases.items()}
            out.append(Verdict("C3", system, regime, *_verdict(mem, 1.0)))
    return out


def _verdict(ratios: dict[str, Ratio], threshold: float) -> tuple[str, dict, str]:
    verdict, why = _decide(ratios, threshold)
    return verdict, ratios, why
