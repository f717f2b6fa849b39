"""Figures for the report (matplotlib, Agg): one colour per trainer, the same in every figure."""
from __future__ import annotations

import contextlib
import io
import math
import multiprocessing
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter  # noqa: E402

from specbench.claims.profiles import Profile  # noqa: E402
from specbench.claims.verdicts import MARK, TRAINING_ONLY, USELESS, candidate, median  # noqa: E402
from specbench.core.defaults import cores  # noqa: E402
from specbench.core.io import write_bytes_atomic  # noqa: E402
from specbench.core.records import ROLES, Record, Study  # noqa: E402
from specbench.registries import TRAINERS  # noqa: E402

# Okabe-Ito (colour-blind safe) without its yellow (unreadable on white) and with its sky blue moved behind black
# (so the first trainers are never two shades of blue), then tab10's others: a trainer's colour is fixed by its
# place in the registry. Line styles and markers cycle on other periods, so trainers that share a hue still differ
# in line and marker.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#000000", "#56B4E9", "#8c564b", "#7f7f7f",
           "#bcbd22"]
LINESTYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
SERIES_COLOURS = ["#1b6ac9", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#495057"]
DPI = 150  # PNGs at 150 dpi: sharp when the HTML scales a wide figure to the page
plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": DPI, "font.size": 10, "axes.grid": True, "grid.alpha": 0.3,
                     "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False})

# A verdict's colour in figures, the same as on the report's board.
VERDICT_COLOUR = {"holds": "#2b8a3e", TRAINING_ONLY: "#d9480f", "fails": "#c92a2a", "inconclusive": "#b35c00", USELESS: "#343a40",
                  "not measured": "#868e96"}


def _index(trainer: str) -> int | None:
    names = TRAINERS.names()  # names only: no trainer is loaded
    return names.index(trainer) if trainer in names else None


def colour(trainer: str) -> str:
    """The trainer's colour, the same in every figure: by its place in the registry (unknown names grey)."""
    i = _index(trainer)
    return PALETTE[i % len(PALETTE)] if i is not None else "#495057"


def style(trainer: str, role: str = "") -> dict:
    """The trainer's line: colour, line style and marker by its place in the registry (the candidate, by its
    `role`, drawn thicker), so every registered trainer looks different from every other in every figure."""
    i = _index(trainer)
    if i is None:
        return {"color": "#495057", "ls": ":", "marker": "x", "lw": 1.4}
    return {"color": colour(trainer), "ls": LINESTYLES[i % len(LINESTYLES)], "marker": MARKERS[i % len(MARKERS)],
            "lw": 2.4 if role == ROLES[0] else 1.5}


_DRAW = [True]
_BATCHES: list[list[tuple]] = []  # the figures built within `rendered_together`, each (figure, path), to render
_FORKED: list[tuple] = []  # the batch the forked renderers inherit


@contextlib.contextmanager
def drawing(on: bool):
    """Within it, figures are laid out but not rendered or written (on=False): the report's text alone."""
    _DRAW.append(on)
    try:
        yield
    finally:
        _DRAW.pop()


@contextlib.contextmanager
def rendered_together(workers: int | None = None):
    """Within it, figures are built but not yet rendered; on leaving it, they are rendered and written, on up to
    `workers` processes (default: this machine's cores), the figure with the most panels first. Rendering is most
    of a report's time, and a figure renders on its own: the report takes the time of its largest figure or of
    1/workers of them all rather than of their sum. Forked processes inherit the figures (nothing is pickled);
    where the platform cannot fork, or this process runs threads (a fork would copy their locks), they are rendered
    here one after another. The files are the same bytes either way. Left by an error, nothing is rendered."""
    batch: list[tuple] = []
    _BATCHES.append(batch)
    try:
        yield
    except BaseException:
        for fig, _ in batch:
            plt.close(fig)
        raise
    finally:
        _BATCHES.pop()
    try:
        _render_batch(batch, workers or cores())
    finally:
        for fig, _ in batch:
            plt.close(fig)


def _render_batch(batch: list[tuple], workers: int) -> None:
    workers = min(workers, len(batch))
    if workers < 2 or not _can_fork():
        _render_each(batch)
        return
    _FORKED[:] = batch
    try:
        order = sorted(range(len(batch)), key=lambda i: -len(batch[i][0].axes))  # most panels first
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_renderer_signals) as pool:
            for _ in pool.map(_render_forked, order):  # an error in a renderer is raised here
                pass
    except BrokenProcessPool:  # a renderer died (killed, out of memory): the figures are drawn here instead
        _render_each(batch)
    finally:
        _FORKED.clear()


def _render_each(batch: list[tuple]) -> None:
    """The figures rendered here, one after another."""
    for fig, path in batch:
        _render(fig, path)


def _can_fork() -> bool:
    """Whether this process may fork renderers: the platform forks, and no other Python thread runs here (a fork
    copies the locks other threads hold; after a sweep on Dask, or while a run's output is still being read, the
    figures are rendered one by one)."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _renderer_signals() -> None:
    """A renderer leaves Ctrl-C and hang-ups to the process that forked it (which says it stopped, in one line) and
    ends quietly on SIGTERM, rather than running the handlers it inherited."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _render_forked(i: int) -> None:
    _render(*_FORKED[i])


def _render(fig, path: Path) -> None:
    """Render the figure and write it atomically (a full disk never leaves half a PNG)."""
    for ax in fig.axes:
        _fewer_minor_ticks(ax)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    write_bytes_atomic(path, buf.getvalue())


def _fewer_minor_ticks(ax) -> None:
    """A log axis's minor ticks at 2 and 5 of each decade rather than at 2 to 9, and where it spans a decade or
    more, none labelled (its default formatter labels none there either, at some cost): the layout measures every
    tick, and the minor ticks of log axes were about half of a report's rendering time."""
    for axis, limits in ((ax.xaxis, ax.get_xlim), (ax.yaxis, ax.get_ylim)):
        if axis.get_scale() != "log" or not isinstance(axis.get_minor_locator(), LogLocator):
            continue
        axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        low, high = sorted(limits())
        if low > 0 and math.log10(high / low) >= 1:
            axis.set_minor_formatter(NullFormatter())


def _save(fig, path: Path) -> Path:
    """Every figure goes through here: rendered and written now (`_render`), or on leaving `rendered_together`,
    or, within `drawing(False)`, never; each returns its path."""
    if not _DRAW[-1]:
        plt.close(fig)
    elif _BATCHES:
        _BATCHES[-1].append((fig, path))
    else:
        _render(fig, path)
        plt.close(fig)
    return path


def _legend_on_top(fig, handles, labels, ncol: int | None = None) -> None:
    """One legend for the whole figure, above the axes (never over the data), in as many columns as its width
    holds; none when nothing was drawn (a sweep in which no run is ok)."""
    if not labels:
        return
    fits = max(1, int(fig.get_figwidth() // 2.3))
    fig.legend(handles, labels, loc="outside upper center", ncol=min(len(labels), ncol or 6, fits), fontsize=9,
               handlelength=2.6, columnspacing=1.4)


def _unique_legend(axes) -> tuple[list, list]:
    """The legend entries of several axes, each label once, in order of first appearance."""
    seen = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, h)
    return list(seen.values()), list(seen)


# ---- overview: per-seed paired ratios --------------------------------------------------------------------------

def seed_ratios(rows: list[tuple[str, str, dict[str, list]]], threshold: float, xlabel: str, title: str, path: Path,
                bound_label: str | None = None, upper_label: str | None = None) -> Path:
    """A dot plot of spectral's advantage (log scale): a line per (cell, baseline), one dot per seed, an arrow to
    the right where the seed's ratio is a lower bound (`bound_label` in the legend, where one is drawn) and to the
    left where it is an upper bound (`upper_label`, likewise), the median as a black bar; the claim's threshold and
    parity (1x) drawn, the cell's verdict written on the right. rows: (cell label, verdict, {baseline: [SeedRatio]}), top
    to bottom; the ratios are the ones the verdict's median is taken over (verdicts.seed_ratios)."""
    bases = list(dict.fromkeys(b for _, _, per in rows for b in per))
    k = max(1, len(bases))
    step = 0.8 / k
    fig, ax = plt.subplots(figsize=(7.2, 1.15 + 0.28 * len(rows) * max(1, k / 3)), layout="constrained")
    values = [p.value for _, _, per in rows for pairs in per.values() for p in pairs
              if p.value > 0 and math.isfinite(p.value)]
    drawn = {"lower": False, "upper": False}  # which bounds the legend explains: only those drawn
    lo = min([*values, 1.0, threshold]) / 2.5
    hi = max([*values, 1.0, threshold]) * 4
    ax.axvspan(threshold, hi, color=VERDICT_COLOUR["holds"], alpha=0.07, lw=0)
    ax.axvline(1.0, color="#495057", lw=1.2)
    if threshold != 1.0:
        ax.axvline(threshold, color=VERDICT_COLOUR["holds"], lw=1.4, ls="--")
    for i, (label, verdict, per) in enumerate(rows):
        if not any(per.values()):
            ax.text(lo * 1.15, i, "no per-seed ratio (see the verdict's reason)", va="center", fontsize=8,
                    color="#868e96")
        for j, b in enumerate(bases):
            pairs = [p for p in per.get(b, []) if p.value > 0 and math.isfinite(p.value)]
            if not pairs:
                continue
            y, c = i + (j - (k - 1) / 2) * step, colour(b)
            exact = [p.value for p in pairs if not (p.lower or p.upper)]
            ax.plot(exact, [y] * len(exact), "o", color=c, ms=5.5, alpha=0.85, mec="white", mew=0.5)
            for p in pairs:
                if p.lower or p.upper:  # the true ratio lies on the arrow's side
                    ax.annotate("", xy=(p.value * (2.2 if p.lower else 1 / 2.2), y), xytext=(p.value, y),
                                arrowprops={"arrowstyle": "-|>", "color": c, "lw": 1.4, "mutation_scale": 9})
                    ax.plot(p.value, y, "|", color=c, ms=7, mew=1.6)
                    drawn["lower" if p.lower else "upper"] = True
            ax.plot(float(np.median([p.value for p in pairs])), y, "|", color="black", ms=13, mew=2.4)
        ax.text(1.01, i, f"{MARK[verdict]} {verdict}", transform=ax.get_yaxis_transform(), va="center",
                fontsize=9, color=VERDICT_COLOUR[verdict], fontweight="bold")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(range(len(rows)), [label for label, _, _ in rows])
    ax.grid(axis="y", visible=False)
    for i in range(1, len(rows)):
        ax.axhline(i - 0.5, color="#dee2e6", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    handles = [Line2D([], [], ls="", marker="o", color=colour(b), label=b) for b in bases]
    handles += [Line2D([], [], ls="", marker="|", color="black", ms=11, mew=2.2, label="median over seeds")]
    if bound_label and drawn["lower"]:
        handles.append(Line2D([], [], ls="", marker=r"$\rightarrow$", color="#495057", ms=14, label=bound_label))
    if upper_label and drawn["upper"]:
        handles.append(Line2D([], [], ls="", marker=r"$\leftarrow$", color="#495057", ms=14, label=upper_label))
    handles += [Line2D([], [], color=VERDICT_COLOUR["holds"], ls="--" if threshold != 1 else "-",
                       label=f"claim: {threshold:g}x" if threshold != 1 else "claim: 1x (parity)")]
    fig.legend(handles=handles, loc="outside upper center", ncol=3, fontsize=8.5, handlelength=1.6,
               columnspacing=1.2)
    return _save(fig, path)


# ---- performance profiles --------------------------------------------------------------------------------------

def performance_profiles(profiles: list[Profile], r_max: float, path: Path) -> Path:
    """Each trainer's performance profile rho(tau) (specbench.claims.profiles) as a step line in its colour and style,
    tau on a log axis from 1 to r_max: a line higher and further left is the faster trainer over more cells."""
    taus = sorted({1.0, r_max, *(r for p in profiles for r in p.ratios if 1.0 <= r <= r_max)})
    fig, ax = plt.subplots(figsize=(7.2, 4.0), layout="constrained")
    for p in profiles:
        st = style(p.trainer, p.role)
        ax.step(taus, [p.rho(tau) for tau in taus], where="post", color=st["color"], ls=st["ls"], lw=st["lw"],
                label=p.trainer)
    ax.set(xscale="log", xlim=(1.0, r_max), ylim=(-0.02, 1.02),
           xlabel="tau: within tau x the fastest trainer's median time to target (log scale)",
           ylabel="fraction of cells")
    _legend_on_top(fig, *ax.get_legend_handles_labels(), ncol=4)
    return _save(fig, path)


# ---- per-system small multiples ---------------------------------------------------------------------------------

def _grid(cells: dict[tuple[str, str], object], panel_height: float = 2.5):
    """A figure with a panel per (system, regime): systems across, regimes down; panels with no cell hidden.
    Returns the figure and {cell: axis}."""
    systems = list(dict.fromkeys(s for s, _ in cells))
    regimes = list(dict.fromkeys(g for _, g in sorted(cells, key=lambda c: c[1])))
    fig, axes = plt.subplots(len(regimes), len(systems), figsize=(max(7.0, 2.9 * len(systems)),
                                                                  0.9 + panel_height * len(regimes)),
                             squeeze=False, layout="constrained")
    out = {}
    for i, regime in enumerate(regimes):
        for j, system in enumerate(systems):
            if (system, regime) in cells:
                out[(system, regime)] = axes[i, j]
                axes[i, j].set_title(f"{system} ({regime})", fontsize=10)
            else:
                axes[i, j].set_axis_off()
    return fig, out


def _curve_panel(ax, groups: dict[str, list[Record]], target: float) -> None:
    """Common metric against training time per trainer: median over seeds and the min-max band, log scales."""
    for trainer, runs in groups.items():
        curves = [np.array([row for row in r.curve if row[2] is not None], dtype=float).reshape(-1, 3)
                  for r in runs if r.curve]
        curves = [c[np.isfinite(c[:, 2])] for c in curves]
        curves = [c for c in curves if len(c)]
        if not curves:
            continue
        t_end = max(c[-1, 0] for c in curves)
        grid = np.geomspace(max(min(c[1, 0] if len(c) > 1 else c[0, 0] for c in curves), 1e-3), max(t_end, 2e-3),
                            200)
        # step interpolation: the metric known at a time is the last one evaluated
        values = np.array([c[np.clip(np.searchsorted(c[:, 0], grid, side="right") - 1, 0, None), 2] for c in curves])
        st = style(trainer, runs[0].role)
        ax.plot(grid, np.median(values, 0), color=st["color"], ls=st["ls"], lw=st["lw"], label=trainer)
        if len(curves) > 1:
            ax.fill_between(grid, values.min(0), values.max(0), color=st["color"], alpha=0.13, lw=0)
    ax.axhline(target, color="black", ls=(0, (4, 3)), lw=1, label="target")
    ax.set(xscale="log", yscale="log")


def curves_grid(cells: dict[tuple[str, str], dict[str, list[Record]]], path: Path) -> Path:
    """The common metric against training time, a panel per (system, regime), one legend for all."""
    fig, axes = _grid(cells)
    for cell, ax in axes.items():
        groups = cells[cell]
        _curve_panel(ax, groups, next(iter(groups.values()))[0].target_loss)
    for ax in fig.axes:
        if ax.axison and ax.get_subplotspec().is_last_row():
            ax.set_xlabel("training time (s)")
        if ax.axison and ax.get_subplotspec().is_first_col():
            ax.set_ylabel("train rollout NMSE")
    _legend_on_top(fig, *_unique_legend(list(axes.values())))
    return _save(fig, path)


def measure_grid(cells: dict[tuple[str, str], dict[str, list[Record]]], value, ylabel: str, path: Path,
                 threshold: float | None = None, threshold_label: str = "") -> Path:
    """A measure per trainer (`value(record)`, from specbench.core.measures) in a panel per (system, regime): each seed
    a small black dot, the seed range a line, the median a large marker in the trainer's colour, log scale.
    threshold: where given, a dashed line at threshold x the candidate's median (C2's line for test MSE)."""
    fig, axes = _grid(cells, panel_height=2.2)
    for cell, ax in axes.items():
        groups = cells[cell]
        for i, (trainer, runs) in enumerate(groups.items()):
            vals = [v for r in runs if (v := value(r)) is not None and math.isfinite(v)]
            st = style(trainer)
            if not vals:
                ax.text(i, 0.5, "failed", ha="center", va="center", rotation=90, fontsize=7,
                        transform=ax.get_xaxis_transform())
                continue
            ax.plot([i, i], [min(vals), max(vals)], color=st["color"], lw=2)
            ax.plot(i, median(vals), st["marker"], color=st["color"], ms=8, ls="", label=trainer)
            ax.plot([i] * len(vals), vals, ".", color="black", ms=3.5)
        spec = [v for r in groups.get(candidate([r for rs in groups.values() for r in rs]), [])
                if (v := value(r)) is not None and math.isfinite(v)]
        if threshold and spec:
            ax.axhline(threshold * median(spec), color=VERDICT_COLOUR["holds"], ls="--", lw=1.2,
                       label=threshold_label)
        ax.set_yscale("log")
        ax.set_xticks(range(len(groups)), [])
        ax.set_xlim(-0.7, len(groups) - 0.3)
        ax.grid(axis="x", visible=False)
    for ax in fig.axes:
        if ax.axison and ax.get_subplotspec().is_first_col():
            ax.set_ylabel(ylabel)
    _legend_on_top(fig, *_unique_legend(list(axes.values())))
    return _save(fig, path)


def _rollout_seed(groups: dict[str, list[Record]]) -> int | None:
    """The lowest seed with a test rollout for the most trainers: every trainer drawn against the same truth."""
    counts: dict[int, int] = {}
    for runs in groups.values():
        for r in runs:
            if r.test_rollout and r.test_rollout.get("pred") is not None:
                counts[r.seed] = counts.get(r.seed, 0) + 1
    return min(counts, key=lambda s: (-counts[s], s)) if counts else None


def rollout_grid(cells: dict[tuple[str, str], dict[str, list[Record]]], path: Path) -> Path | None:
    """The first state of the first test trajectory and each trainer's rollout from its initial state, a panel per
    (system, regime), all trainers at one seed (named): the truth as markers at its sampled times, the training
    span shaded and the training observation times ticked along the bottom (from the record's config.data)."""
    seeds = {cell: _rollout_seed(groups) for cell, groups in cells.items()}
    drawn = {cell: groups for cell, groups in cells.items() if seeds[cell] is not None}
    if not drawn:
        return None
    fig, axes = _grid(drawn, panel_height=2.3)
    for cell, ax in axes.items():
        runs = {t: r for t, rs in drawn[cell].items() for r in rs
                if r.seed == seeds[cell] and r.test_rollout}
        first = next(iter(runs.values()))
        t, truth = np.array(first.test_rollout["t"]), np.array(first.test_rollout["truth"])[:, 0]
        data = first.config.get("data") or {}
        if data.get("t_span"):
            ax.axvspan(0.0, data["t_span"], color="#e9ecef", lw=0, label="training span")
            if data.get("n_times"):
                ax.plot(np.linspace(0.0, data["t_span"], int(data["n_times"])), np.zeros(int(data["n_times"])),
                        "|", color="#495057", ms=5, mew=0.7, transform=ax.get_xaxis_transform(), clip_on=False,
                        label="training observation times")
        for trainer, r in runs.items():
            pred = r.test_rollout["pred"]
            if pred is not None:
                st = style(trainer)
                ax.plot(t, np.array(pred, dtype=float)[:, 0], color=st["color"], ls=st["ls"], lw=1.3, label=trainer)
        dense = len(t) > 60  # many samples: small dots, or the markers hide the rollouts
        ax.plot(t, truth, "o", mfc="black" if dense else "none", mec="black", ms=1.6 if dense else 4,
                mew=1.1, label="truth (test samples)")
        if np.isfinite(truth).all() and truth.size:
            span = max(np.abs(truth).max(), 1e-12)
            ax.set_ylim(min(truth.min(), 0) - 0.5 * span, truth.max() + 0.5 * span)
        ax.set_xlim(t[0], t[-1])
        ax.set_title(f"{cell[0]} ({cell[1]}), seed {seeds[cell]}", fontsize=10)
    for ax in fig.axes:
        if ax.axison and ax.get_subplotspec().is_last_row():
            ax.set_xlabel("time (system units)")
        if ax.axison and ax.get_subplotspec().is_first_col():
            ax.set_ylabel("state 1")
    _legend_on_top(fig, *_unique_legend(list(axes.values())), ncol=5)
    return _save(fig, path)


# ---- scaling studies ---------------------------------------------------------------------------------------------

def _series_style(series: str, i: int) -> dict:
    """A trainer's series keeps the trainer's colour and marker (dashed for a variant, e.g. whole trajectories);
    other series take a palette colour."""
    trainer, variant = Study.split(series)
    if trainer in TRAINERS.names():
        st = style(trainer)
        return {"color": st["color"], "marker": st["marker"], "ls": "--" if variant else "-"}
    return {"color": SERIES_COLOURS[i % len(SERIES_COLOURS)], "marker": MARKERS[i % len(MARKERS)], "ls": "-"}


def _plot_series(ax, by_series: dict[str, list], names: list[str] | None = None) -> None:
    """A line per series through its positive, finite points; a series that is not a trainer's takes its colour
    by its place in `names` (default: the series here), so the panels of one figure agree."""
    names = names or list(by_series)
    for series, pts in by_series.items():
        xy = [(x, y) for x, y in pts if y is not None and 0 < y < math.inf]
        if xy:
            ax.plot(*zip(*xy), ms=4.5, lw=1.5, label=series, **_series_style(series, names.index(series)))


def _plain_minor_ticks(ax) -> None:
    """No labels on a log axis's minor ticks (a short range otherwise labels them all, '4x10^0 6x10^0')."""
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def scaling(panels: dict[str, dict[str, list]], xlabel: str, path: Path) -> Path:
    """One log-log panel per quantity, a line per series, one legend for all above them (the fitted exponents
    are in the report's tables)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 4.0), squeeze=False, layout="constrained")
    for ax, (ylabel, by_series) in zip(axes[0], panels.items()):
        _plot_series(ax, by_series)
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
        _plain_minor_ticks(ax)
    _legend_on_top(fig, *_unique_legend(axes), ncol=4)
    return _save(fig, path)


def order(p_points: dict[str, list], e_points: dict[str, list], path: Path) -> Path:
    """Representation error against p (semi-log) and against E (log-log)."""
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.8), layout="constrained")
    names = [*p_points, *e_points]
    for ax, by_series, xlabel, xlog in ((axes[0], p_points, "Legendre order p", False),
                                        (axes[1], e_points, "elements E", True)):
        _plot_series(ax, by_series, names)
        ax.set(yscale="log", xscale="log" if xlog else "linear", xlabel=xlabel,
               ylabel="representation error (max, relative)")
    _legend_on_top(fig, *_unique_legend(axes), ncol=3)
    return _save(fig, path)


def cells(panels: dict[str, tuple[dict[str, list], list[str]]], ylabel: str, path: Path) -> Path:
    """A value per trainer in each of several cells (regime, noise), a panel per system: markers side by side,
    log scale. panels: system -> ({trainer: [value per cell]}, cell labels)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(max(7.0, 4.6 * len(panels)), 3.9), squeeze=False,
                             layout="constrained")
    for ax, (system, (grid, labels)) in zip(axes[0], panels.items()):
        width = 0.8 / max(1, len(grid))
        for k, (trainer, values) in enumerate(grid.items()):
            xs = [i - 0.4 + width * (k + 0.5) for i in range(len(labels))]
            pts = [(x, v) for x, v in zip(xs, values) if v is not None and math.isfinite(v) and v > 0]
            if pts:
                st = style(trainer)
                ax.plot(*zip(*pts), st["marker"], color=st["color"], ms=6.5, ls="", label=trainer)
        ax.set_xticks(range(len(labels)), labels, rotation=25, ha="right", fontsize=8.5)
        ax.set(yscale="log", ylabel=ylabel, title=system)
    _legend_on_top(fig, *_unique_legend(axes))
    return _save(fig, path)
