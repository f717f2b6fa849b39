"""Ground-truth datasets: trajectories of a system from scipy DOP853 (rtol = atol = 1e-10) or its closed form.

A dataset is fixed by (system and its parameters, regime, noise, seed): the same key gives the same arrays bit
for bit. Datasets are cached on disk under that key; a cache file that cannot be read or does not match its key
is regenerated, never trusted.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

from specbench.core.errors import UsageError
from specbench.core.io import write_bytes_atomic
from specbench.systems import System
from specbench.systems.measurements import (HOLDS, Measurements, Trajectory,  # noqa: F401 (the data's vocabulary)
                                            hold_input)

DATA_VERSION = 1  # bump when the way data is generated changes, so old cache files are not used
RTOL = ATOL = 1e-10
ARRAYS = ("t", "train_clean", "train", "t_test", "test")


# What a dataset may ask of a trainer beyond full states of an input-free system on one shared grid; a trainer
# declares the ones it can learn from (`Trainer.learns_from`)
NEEDS = ("inputs", "hidden", "irregular")


@dataclass
class Dataset:
    """Observations of one system, split into training and test trajectories.

    The general form is a list of `Trajectory` per split (`trajectories(split)`): per-trajectory times, outputs
    that are the states `outputs` (None: every state; the others hidden), and inputs with their `hold`. Where every
    trajectory of a split shares one grid (`regular`), the arrays `t`, `train` (and `train_clean`), `t_test` and
    `test` hold the same outputs as (n_traj, n_times, n_outputs): the equation systems' form, which every trainer
    reads; they are None for an irregular dataset. `needs` says what a trainer must learn from to use it."""

    system: System
    regime: str
    noise: float
    seed: int
    t: np.ndarray | None  # (n_times,) observation times of the training trajectories
    train_clean: np.ndarray | None
    train: np.ndarray | None  # train_clean plus observation noise
    t_test: np.ndarray | None  # (n_test_times,)
    test: np.ndarray | None
    outputs: tuple[int, ...] | None = None  # the measured states, in output order; None: every state
    hold: str = "zoh"
    runs: dict[str, list[Trajectory]] | None = None  # "train", "test"; None: built from the regular arrays

    @property
    def key(self) -> str:
        return dataset_key(self.system, self.regime, self.noise, self.seed)

    def copy(self) -> Dataset:
        """The same dataset with arrays of its own: a run may not change what the next run in its process reads."""
        return replace(self, **{name: array.copy() for name in ARRAYS if (array := getattr(self, name)) is not None})

    def trajectories(self, split: str) -> list[Trajectory]:
        """The trajectories of `split` ("train" or "test") in the general form."""
        if self.runs is not None:
            return self.runs[split]
        t, y = (self.t, self.train) if split == "train" else (self.t_test, self.test)
        return [Trajectory(t, traj) for traj in y]

    @property
    def regular(self) -> bool:
        """Every trajectory of a split observed at the same times (the arrays `t`, `train`, `t_test`, `test`)."""
        return self.t is not None and self.t_test is not None

    @property
    def fully_observed(self) -> bool:
        return self.outputs is None or tuple(self.outputs) == tuple(range(self.system.dim))

    @property
    def input_free(self) -> bool:
        return self.runs is None or all(r.u is None for split in self.runs.values() for r in split)

    @property
    def needs(self) -> frozenset[str]:
        """What a trainer must learn from to use these data (NEEDS): "inputs", "hidden" states, "irregular"
        times; empty for full states of an input-free system on one grid."""
        return frozenset(word for word, needed in (("inputs", not self.input_free),
                                                   ("hidden", not self.fully_observed),
                                                   ("irregular", not self.regular)) if needed)


def measured(system: System, train: list[Trajectory], test: list[Trajectory], outputs=None, hold: str = "zoh",
             regime: str = "dense") -> Dataset:
    """A dataset of measurements in the general form; where a split shares one grid its arrays are set too."""
    def grid(runs):
        first = runs[0].t
        if all(len(r.t) == len(first) and np.array_equal(r.t, first) for r in runs):
            return first, np.stack([r.y for r in runs])
        return None, None
    t, y = grid(train)
    t_test, y_test = grid(test)
    if t is None or t_test is None:
        t = y = t_test = y_test = None
    outputs = None if outputs is None else tuple(int(k) for k in outputs)
    return Dataset(system, regime, 0.0, 0, t, y, y, t_test, y_test, outputs, hold, {"train": train, "test": test})


def dataset_key(system: System, regime: str, noise: float, seed: int) -> str:
    regime_spec = {k: v for k, v in vars(system.regimes[regime]).items() if k != "irregular" or v}  # (the keys of
    # the regular regimes as before `irregular` existed: their cached files stay valid)
    spec = {"version": DATA_VERSION, "system": system.name, "params": system.params, "regime": regime,
            "regime_spec": regime_spec, "t_span": system.t_span,
            "test_horizon": system.test_horizon, "noise": float(noise), "seed": int(seed)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:20]


def integrate(system: System, x0: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Trajectory from x0 observed at times t (t[0] is the initial time), shape (len(t), dim)."""
    exact = system.exact(t - t[0], x0)
    if exact is not None:
        return exact
    with np.errstate(all="ignore"):  # a blow-up is reported below, in one line
        sol = solve_ivp(system.rhs_numpy, (t[0], t[-1]), x0, method="DOP853", t_eval=t, rtol=RTOL, atol=ATOL)
    if not sol.success:
        raise UsageError(f"{system.name} with parameters {system.params}: the ground truth cannot be integrated "
                         f"from {x0} ({sol.message})")
    return sol.y.T


def generate(system: System, regime: str = "dense", noise: float = 0.0, seed: int = 0) -> Dataset:
    """Make a dataset from the equations (no cache)."""
    if regime not in system.regimes:
        raise UsageError(f"unknown regime {regime!r}; valid regimes: {', '.join(system.regimes)}")
    if not (noise >= 0 and np.isfinite(noise)):
        raise UsageError(f"noise must be finite and >= 0, got {noise}")
    spec = system.regimes[regime]
    # Independent streams for train states, test states, noise and (irregular) times: changing one count leaves
    # the others alone.
    rng_train, rng_test, rng_noise, rng_times = (np.random.default_rng([seed, k]) for k in range(4))
    t = np.linspace(0.0, system.t_span, spec.n_times)
    n_test_times = max(2, int(round((spec.n_times - 1) * system.test_horizon / system.t_span)) + 1)
    t_test = np.linspace(0.0, system.test_horizon, n_test_times)
    starts = system.sample_initial(rng_train, spec.n_train)
    # irregular: each trajectory from t = 0 (its initial state is observed, as on a grid) at n_times - 1 other
    # times drawn uniformly over the span, its own
    times = [np.concatenate([[0.0], np.sort(rng_times.uniform(0.0, system.t_span, spec.n_times - 1))])
             if spec.irregular else t for _ in starts]
    train_clean = [integrate(system, x0, tb) for x0, tb in zip(starts, times)]
    test = np.stack([integrate(system, x0, t_test) for x0 in system.sample_initial(rng_test, spec.n_test)])
    # Noise relative to each state's standard deviation over the clean training data.
    scale = np.ascontiguousarray(np.concatenate(train_clean)).std(0)  # (C order: the sum's order as before)
    train = [y + noise * scale * rng_noise.standard_normal(y.shape) for y in train_clean]
    if not all(np.isfinite(a).all() for a in (*train_clean, *train, test)):
        raise UsageError(f"{system.name} with parameters {system.params} gives non-finite trajectories; "
                         "no dataset is written")
    if spec.irregular:
        data = measured(system, [Trajectory(tb, y) for tb, y in zip(times, train)],
                        [Trajectory(t_test, y) for y in test], regime=regime)
        return replace(data, noise=float(noise), seed=int(seed))
    return Dataset(system, regime, float(noise), int(seed), t, np.stack(train_clean), np.stack(train), t_test, test)


def from_measurements(system: System, m) -> Dataset:
    """The dataset of a measured system: its outputs are its first states, the hidden ones after them
    (`specbench.systems.measurements.Measurements`)."""
    return measured(system, m.train, m.test, outputs=range(len(m.outputs)), hold=m.hold)


def as_measurements(data: Dataset):
    """The dataset in the measurement file's form (what `specbench data --out FILE.csv` writes): its outputs
    named x0, x1, ..., its inputs u0, ..."""
    runs = {split: data.trajectories(split) for split in ("train", "test")}
    first = runs["train"][0]
    inputs = () if first.u is None else tuple(f"u{k}" for k in range(first.u.shape[1]))
    n_out = first.y.shape[1]
    return Measurements(runs["train"], runs["test"], tuple(f"x{k}" for k in range(n_out)), inputs, data.hold,
                        data.system.dim - n_out)


def default_cache_dir() -> Path:
    """SPECBENCH_CACHE, or ~/.cache/specbench where it is unset or empty (empty is not the working directory)."""
    return Path(os.environ.get("SPECBENCH_CACHE") or Path.home() / ".cache" / "specbench")


def make_dataset(system: System, regime: str = "dense", noise: float = 0.0, seed: int = 0,
                 cache_dir: Path | str | None = None) -> Dataset:
    """The dataset for these settings, from the cache when a valid file is there, else generated and cached.

    `cache_dir=False` disables the cache. A measured system's dataset is its measurements (never cached: they
    are read, not made).
    """
    if regime not in system.regimes:
        raise UsageError(f"unknown regime {regime!r}; valid regimes: {', '.join(system.regimes)}")
    if system.kind == "measured":
        return from_measurements(system, system.measurements())
    if cache_dir is False or system.regimes[regime].irregular:  # (a cache file holds one grid per split)
        return generate(system, regime, noise, seed)
    path = Path(cache_dir or default_cache_dir()) / f"{system.name}-{dataset_key(system, regime, noise, seed)}.npz"
    cached = _load_cached(path, system, regime, noise, seed)
    if cached is not None:
        return cached
    data = generate(system, regime, noise, seed)
    try:
        save(data, path)
    except OSError:
        pass  # an unwritable cache costs time, not correctness
    return data


def digest(arrays: dict[str, np.ndarray]) -> str:
    """A hash of the arrays' values, shapes and dtypes: a cache file whose values were changed after it was
    written (a bad copy, a bit flip, an edit) no longer matches it."""
    h = hashlib.sha256()
    for name in ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}{a.shape}{a.dtype.str}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _load_cached(path: Path, system, regime, noise, seed) -> Dataset | None:
    """The cached dataset at `path` if it is the one asked for and whole; None (regenerate) otherwise."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["key"]) != dataset_key(system, regime, noise, seed):
                return None
            arrays = {name: f[name] for name in ARRAYS}
            if str(f["digest"]) != digest(arrays):
                return None
    except Exception:  # truncated, not a zip, missing arrays or digest (an older file): regenerate
        return None
    spec = system.regimes[regime]
    expected = {"train": (spec.n_train, spec.n_times, system.dim), "test": (spec.n_test, None, system.dim)}
    for name, shape in expected.items():
        got = arrays[name].shape
        if len(got) != 3 or any(e is not None and e != g for e, g in zip(shape, got)):
            return None
    if not all(np.isfinite(a).all() for a in arrays.values()):
        return None
    return Dataset(system, regime, float(noise), int(seed), **arrays)


def save(data: Dataset, path: Path | str) -> None:
    """Write the dataset as .npz (arrays, system parameters as scalars, the key), atomically."""
    scalars = {f"param_{k}": np.asarray(v) for k, v in data.system.params.items()}
    buf = io.BytesIO()
    arrays = {name: getattr(data, name) for name in ARRAYS}
    np.savez(buf, key=data.key, digest=digest(arrays), system=data.system.name, regime=data.regime,
             noise=data.noise, seed=data.seed, **arrays, **scalars)
    write_bytes_atomic(path, buf.getvalue())
