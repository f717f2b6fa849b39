"""Figures for the report (matplotlib, Agg): one colour per trainer, the same in every figure."""
from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from specbench.report.verdicts import exponent, median  # noqa: E402
from specbench.results import write_bytes_atomic  # noqa: E402
from specbench.trainers import TRAINERS  # noqa: E402

# Okabe-Ito (colour-blind safe), then tab10's others: a trainer's colour is fixed by its place in the registry.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
           "#8c564b", "#7f7f7f", "#bcbd22", "#17becf"]
SERIES_COLOURS = ["#1b6ac9", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#495057"]
plt.rcParams.update({"figure.dpi": 110, "font.size": 10, "axes.grid": True, "grid.alpha": 0.3,
                     "axes.spines.top": False, "axes.spines.right": False})


def colour(trainer: str) -> str:
    """The trainer's colour, the same in every figure: by its place in the registry (unknown names grey)."""
    names = list(TRAINERS)
    return PALETTE[names.index(trainer) % len(PALETTE)] if trainer in names else "#495057"


_DRAW = [True]


@contextlib.contextmanager
def drawing(on: bool):
    """Within it, figures are laid out but not rendered or written (on=False): the report's text alone."""
    _DRAW.append(on)
    try:
        yield
    finally:
        _DRAW.pop()


def _save(fig, path: Path) -> Path:
    """Render the figure and write it atomically (a full disk never leaves half a PNG)."""
    if _DRAW[-1]:
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        write_bytes_atomic(path, buf.getvalue())
    plt.close(fig)
    return path


def learning_curves(groups: dict[str, list[dict]], target: float, title: str, path: Path) -> Path:
    """Common metric against training time per trainer: median over seeds and the min-max band, log scales."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for trainer, runs in groups.items():
        curves = [np.array(r["curve"], dtype=float) for r in runs if r["curve"]]
        curves = [c[np.isfinite(c[:, 2])] for c in curves]
        curves = [c for c in curves if len(c)]
        if not curves:
            continue
        t_end = max(c[-1, 0] for c in curves)
        grid = np.geomspace(max(min(c[1, 0] if len(c) > 1 else c[0, 0] for c in curves), 1e-3), t_end, 200)
        # step interpolation: the metric known at a time is the last one evaluated
        values = np.array([c[np.clip(np.searchsorted(c[:, 0], grid, side="right") - 1, 0, None), 2] for c in curves])
        ax.plot(grid, np.median(values, 0), color=colour(trainer), label=trainer, lw=1.8)
        if len(curves) > 1:
            ax.fill_between(grid, values.min(0), values.max(0), color=colour(trainer), alpha=0.18, lw=0)
    ax.axhline(target, color="black", ls="--", lw=1, label=f"target {target:g}")
    ax.set(xscale="log", yscale="log", xlabel="training time (s)", ylabel="common metric: train rollout NMSE",
           title=title)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def per_trainer(groups: dict[str, list[dict]], value, ylabel: str, title: str, path: Path,
                scale: float = 1.0, log: bool = True) -> Path:
    """A measure per trainer (`value(record)`, from specbench.measures): the median (large marker), the seed range (line) and each seed (small dots). On a log
    axis a dot plot, never bars (a bar's length on a log axis depends on an arbitrary bottom); on a linear axis,
    bars from zero."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    names = list(groups)
    for i, trainer in enumerate(names):
        vals = [value(r) * scale for r in groups[trainer] if value(r) is not None]
        if not vals:
            ax.text(i, 0.5, "no value\n(failed)", ha="center", va="center", transform=ax.get_xaxis_transform(),
                    fontsize=8)
            continue
        m, c = median(vals), colour(trainer)
        if log:
            ax.plot([i, i], [min(vals), max(vals)], color=c, lw=2)
            ax.plot(i, m, "o", color=c, ms=9)
        else:
            ax.bar(i, m, color=c, width=0.6, alpha=0.85)
            ax.plot([i, i], [min(vals), max(vals)], color="black", lw=1)
        ax.plot([i] * len(vals), vals, ".", color="black", ms=4)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set(ylabel=ylabel, title=title)
    if log:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    return _save(fig, path)


def rollout(groups: dict[str, list[dict]], title: str, path: Path, max_states: int = 2) -> Path | None:
    """The first test trajectory against each trainer's rollout (seed with the lowest number)."""
    runs = {t: rs[0] for t, rs in groups.items() if rs and rs[0].get("test_rollout")}
    if not runs:
        return None
    first = next(iter(runs.values()))["test_rollout"]
    n = min(max_states, len(first["truth"][0]))
    fig, axes = plt.subplots(n, 1, figsize=(6.4, 1.9 * n + 0.6), sharex=True, squeeze=False)
    t = np.array(first["t"])
    for k, ax in enumerate(axes[:, 0]):
        ax.plot(t, np.array(first["truth"])[:, k], color="black", lw=2.2, label="truth")
        for trainer, r in runs.items():
            pred = r["test_rollout"]["pred"]
            if pred is not None:
                ax.plot(t, np.array(pred)[:, k], color=colour(trainer), lw=1.2, ls="--", label=trainer)
        ax.set_ylabel(f"state {k + 1}")
        if math.isfinite(np.abs(np.array(first["truth"])).max()):
            lim = 1.5 * np.abs(np.array(first["truth"])[:, k]).max()
            ax.set_ylim(-lim if np.array(first["truth"])[:, k].min() < 0 else 0, lim)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("time (system units)")
    axes[0, 0].legend(fontsize=7, ncol=3, loc="upper right")
    return _save(fig, path)


def _series_style(series: str, i: int) -> dict:
    """A trainer's series keeps the trainer's colour (dashed for a variant); other series take a palette colour."""
    trainer = series.split(" (")[0]
    if trainer in TRAINERS:
        return {"color": colour(trainer), "ls": "--" if " (" in series else "-"}
    return {"color": SERIES_COLOURS[i % len(SERIES_COLOURS)], "ls": "-"}


def _plot_series(ax, by_series: dict[str, list], label) -> None:
    """A line per series through its positive points; label(series, points) names it in the legend."""
    for i, (series, pts) in enumerate(by_series.items()):
        xy = [(x, y) for x, y in pts if y is not None and y > 0]
        if xy:
            ax.plot(*zip(*xy), marker="o", ms=4, lw=1.5, label=label(series, pts), **_series_style(series, i))


def scaling(panels: dict[str, dict[str, list]], xlabel: str, title: str, path: Path) -> Path:
    """One log-log panel per quantity: a line per series, the fitted exponent in its legend entry."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.0), squeeze=False)
    for ax, (ylabel, by_series) in zip(axes[0], panels.items()):
        _plot_series(ax, by_series, lambda series, pts: f"{series}: n^{exponent(pts):.2f}")
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
        ax.legend(fontsize=6, loc="best")
    fig.suptitle(title)
    return _save(fig, path)


def order(p_points: dict[str, list], e_points: dict[str, list], path: Path) -> Path:
    """Representation error against p (semi-log) and against E (log-log)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0))
    for ax, by_series, xlabel, xlog in ((axes[0], p_points, "Legendre order p", False),
                                        (axes[1], e_points, "elements E", True)):
        _plot_series(ax, by_series, lambda series, pts: series)
        ax.set(yscale="log", xscale="log" if xlog else "linear", xlabel=xlabel,
               ylabel="representation error (max, relative)")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("spectral representation error")
    return _save(fig, path)


def cells(grid: dict[str, list], labels: list[str], ylabel: str, title: str, path: Path) -> Path:
    """A value per trainer in each of several cells (regime, noise): markers side by side, log scale."""
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    width = 0.8 / max(1, len(grid))
    for k, (trainer, values) in enumerate(grid.items()):
        xs = [i - 0.4 + width * (k + 0.5) for i in range(len(labels))]
        pts = [(x, v) for x, v in zip(xs, values) if v is not None and math.isfinite(v) and v > 0]
        if pts:
            ax.plot(*zip(*pts), "o", color=colour(trainer), ms=7, label=trainer)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set(yscale="log", ylabel=ylabel, title=title)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)
