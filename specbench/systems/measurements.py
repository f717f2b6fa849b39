"""Measurements as a user has them: trajectories of outputs at their own times, driven by inputs with a declared
hold, split into training and test trajectories; read from (and written to) the file format of docs/data-format.md
(CSV, or the NPZ that `specbench data` writes), checked at the door.

A bad file is one line naming what is wrong (a UsageError: exit status 2), before anything is trained or written.
Only numpy and the standard library: the command line checks a file before it loads torch.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specbench.core.errors import UsageError

HOLDS = ("zoh", "linear")  # how an input sampled at known times is held between its samples
SPLITS = ("train", "test")
KEYS = ("trajectory", "time", "split")  # the columns every CSV has; then outputs y_NAME and inputs u_NAME


@dataclass(frozen=True)
class Trajectory:
    """One trajectory's measurements: outputs y at its own times t, and the input u sampled at its own times t_u
    (None for an input-free system)."""

    t: np.ndarray  # (n,) increasing
    y: np.ndarray  # (n, n_outputs)
    t_u: np.ndarray | None = None  # (m,) increasing
    u: np.ndarray | None = None  # (m, n_inputs)


@dataclass(frozen=True)
class Measurements:
    """What a measurement file holds: trajectories per split, the names of outputs and inputs, the input's hold,
    and how many states are hidden (never measured: the model has outputs + hidden states)."""

    train: list[Trajectory]
    test: list[Trajectory]
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    hold: str = "zoh"
    hidden: int = 0


def hold_input(t_u: np.ndarray, u: np.ndarray, t: np.ndarray, hold: str) -> np.ndarray:
    """The input u (m, n_inputs) sampled at t_u, at the times t (k,), by its hold: "zoh" keeps each sample until
    the next one, "linear" interpolates between samples; shape (k, n_inputs). Times outside [t_u[0], t_u[-1]]
    are a ValueError: an input is never extrapolated."""
    t = np.asarray(t, dtype=float)
    if len(t) and (t.min() < t_u[0] or t.max() > t_u[-1]):
        raise ValueError(f"input needed at t in [{t.min():g}, {t.max():g}], sampled on [{t_u[0]:g}, {t_u[-1]:g}]")
    if hold == "zoh":
        return u[np.searchsorted(t_u, t, side="right") - 1]
    if hold == "linear":
        return np.stack([np.interp(t, t_u, u[:, k]) for k in range(u.shape[1])], axis=-1)
    raise ValueError(f"unknown hold {hold!r}; valid holds: {', '.join(HOLDS)}")


def read(path: Path | str) -> Measurements:
    """The measurements in `path` (.csv, or .npz as `specbench data` writes), checked; UsageError (one line) for a
    file that is not readable or not valid."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            return _read_npz(path)
        return _read_csv(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None


def _read_npz(path: Path) -> Measurements:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: np.asarray(f[k], dtype=float) for k in ("t", "train", "t_test", "test")}
    except KeyError as exc:
        raise UsageError(f"{path}: missing array {exc.args[0]} (an NPZ of `specbench data` has t, train, t_test, "
                         "test)") from None
    except (ValueError, OSError) as exc:
        raise UsageError(f"{path}: not an NPZ of numbers ({exc})") from None
    for t, name in (("t", "train"), ("t_test", "test")):
        times, values = arrays[t], arrays[name]
        if times.ndim != 1 or values.ndim != 3 or values.shape[1] != len(times) or values.shape[2] != \
                arrays["train"].shape[-1]:
            raise UsageError(f"{path}: {name} has shape {values.shape} and {t} {times.shape}; an NPZ of `specbench "
                             f"data` has {name} (n_traj, n_times, state) with {t} (n_times,), one state count")
    dim = arrays["train"].shape[-1]
    runs = {split: [Trajectory(arrays[t], y) for y in arrays[name]]
            for split, t, name in (("train", "t", "train"), ("test", "t_test", "test"))}
    return _checked(path, runs, tuple(f"x{k}" for k in range(dim)), (), "zoh", 0)


def _read_csv(path: Path) -> Measurements:
    with open(path, newline="") as fh:
        lines = fh.read().splitlines()
    declared, comments = {}, 0
    while lines and lines[0].startswith("#"):  # "# hold = linear", "# hidden = 1"
        key, _, value = lines.pop(0).lstrip("# ").partition("=")
        comments += 1
        if key.strip():
            declared[key.strip()] = value.strip()
    unknown = set(declared) - {"hold", "hidden"}
    if unknown:
        raise UsageError(f"{path}: unknown declaration {sorted(unknown)[0]!r} (known: hold, hidden)")
    hold = declared.get("hold", "zoh")
    if hold not in HOLDS:
        raise UsageError(f"{path}: hold {hold!r} is not one of {', '.join(HOLDS)}")
    try:
        hidden = int(declared.get("hidden", "0"))
        assert hidden >= 0
    except (ValueError, AssertionError):
        raise UsageError(f"{path}: hidden must be a whole number >= 0, got {declared['hidden']!r}") from None
    rows = list(csv.reader(lines))
    if not rows:
        raise UsageError(f"{path}: empty file (a header row is needed: {', '.join(KEYS)}, y_NAME..., u_NAME...)")
    header = [h.strip() for h in rows[0]]
    missing = [k for k in KEYS if k not in header]
    outputs = [h for h in header if h.startswith("y_") and len(h) > 2]
    inputs = [h for h in header if h.startswith("u_") and len(h) > 2]
    if missing or not outputs:
        raise UsageError(f"{path}: missing column {(missing or ['y_NAME (an output)'])[0]}")
    extra = [h for h in header if h not in KEYS and h not in outputs and h not in inputs]
    if extra or len(set(header)) < len(header):
        raise UsageError(f"{path}: extra column {(extra or [h for h in header if header.count(h) > 1])[0]!r} "
                         f"(columns: {', '.join(KEYS)}, y_NAME..., u_NAME...)")
    col = {h: i for i, h in enumerate(header)}
    per: dict[str, list] = {}
    splits: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2 + comments):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise UsageError(f"{path}: row {line} has {len(row)} cells, the header {len(header)}")
        cells = {h: row[i].strip() for h, i in col.items()}
        split = cells["split"]
        if split not in SPLITS:
            raise UsageError(f"{path}: row {line}: split {split!r} is not one of {', '.join(SPLITS)}")
        if splits.setdefault(cells["trajectory"], split) != split:
            raise UsageError(f"{path}: trajectory {cells['trajectory']!r} is in both splits")
        numbers = {h: _number(path, line, h, cells[h]) for h in ["time", *outputs, *inputs]}
        if numbers["time"] is None:
            raise UsageError(f"{path}: row {line}: time is missing")
        per.setdefault(cells["trajectory"], []).append(numbers)
    runs = {split: [] for split in SPLITS}
    for name, samples in per.items():
        runs[splits[name]].append(_trajectory(path, name, samples, outputs, inputs))
    return _checked(path, runs, tuple(h[2:] for h in outputs), tuple(h[2:] for h in inputs), hold, hidden)


def _number(path: Path, line: int, column: str, cell: str) -> float | None:
    if cell == "":
        return None
    try:
        value = float(cell)
    except ValueError:
        raise UsageError(f"{path}: row {line}, column {column}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{path}: row {line}, column {column}: {cell} (values must be finite)")
    return value


def _trajectory(path: Path, name: str, samples: list[dict], outputs: list[str], inputs: list[str]) -> Trajectory:
    """One trajectory from its rows: an output sample where every output is given, an input sample where every
    input is; a row that gives some and not all of them is a mistake."""
    def part(columns):
        given = [[s[c] for c in columns] for s in samples]
        half = [g for g in given if any(v is None for v in g) and any(v is not None for v in g)]
        if half:
            raise UsageError(f"{path}: trajectory {name!r}: a row gives some of {', '.join(columns)} and not all")
        keep = [i for i, g in enumerate(given) if g[0] is not None]
        return np.array([samples[i]["time"] for i in keep]), np.array([given[i] for i in keep], dtype=float)
    t, y = part(outputs)
    if not inputs:
        return Trajectory(t, y.reshape(len(t), len(outputs)))
    t_u, u = part(inputs)
    return Trajectory(t, y.reshape(len(t), len(outputs)), t_u, u.reshape(len(t_u), len(inputs)))


def _checked(path, runs: dict[str, list[Trajectory]], outputs, inputs, hold, hidden) -> Measurements:
    """The measurements, or a UsageError for the first thing wrong with them."""
    for split in SPLITS:
        if not runs[split]:
            raise UsageError(f"{path}: no trajectory in the {split} split")
        for k, r in enumerate(runs[split]):
            where = f"{path}: {split} trajectory {k}"
            for times, what in ((r.t, "output"), (r.t_u, "input")):
                if times is not None and len(times) > 1 and not (np.diff(times) > 0).all():
                    raise UsageError(f"{where}: {what} times are not increasing")
            if len(r.t) < 2:
                raise UsageError(f"{where}: {len(r.t)} output sample(s); a trajectory needs at least two")
            if not (np.isfinite(r.y).all() and np.isfinite(r.t).all()):
                raise UsageError(f"{where}: NaN or infinite values (values must be finite)")
            if inputs and (len(r.t_u) == 0 or r.t_u[0] > r.t[0] or r.t_u[-1] < r.t[-1]):
                raise UsageError(f"{where}: inputs missing where the {hold} hold needs them (the input must be "
                                 f"sampled at the trajectory's first and last times, {r.t[0]:g} and {r.t[-1]:g})")
    return Measurements(runs["train"], runs["test"], tuple(outputs), tuple(inputs), hold, hidden)


def write_csv(m: Measurements, path: Path | str) -> None:
    """Write `m` in the CSV format `read` reads (docs/data-format.md); times and values to full precision."""
    with open(path, "w", newline="") as fh:
        fh.write(f"# hold = {m.hold}\n# hidden = {m.hidden}\n")
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["trajectory", "time", *(f"y_{o}" for o in m.outputs), *(f"u_{i}" for i in m.inputs), "split"])
        for split in SPLITS:
            for k, r in enumerate(getattr(m, split)):
                name = f"{split}{k}"
                times = np.union1d(r.t, r.t_u) if r.t_u is not None else r.t
                for t in times:
                    y = r.y[np.searchsorted(r.t, t)] if t in r.t else [""] * len(m.outputs)
                    u = (r.u[np.searchsorted(r.t_u, t)] if t in r.t_u else [""] * len(m.inputs)) if m.inputs else []
                    w.writerow([name, repr(float(t)), *map(_cell, y), *map(_cell, u), split])


def _cell(v) -> str:
    return v if v == "" else repr(float(v))
