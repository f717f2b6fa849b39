"""Presets: TOML files beside this module, or a user's own (`--preset PATH`). A preset names the sweep (systems,
trainers, regimes, seeds, and `budget_s`: the training seconds per run, a number for every system and regime or a
table by system and regime, `budget_s_for`) and may override a system's own target (`[targets]`); per-trainer
settings for each system and regime come from a tuned-settings file written by `specbench tune` (the package's
`tuned.toml` unless the preset names another with `tuned = "PATH"`, relative to the preset).

A job's config is resolved in this order, later winning: the trainer's defaults, the tuned settings
(tuned[system][regime][trainer], or tuned[system][trainer] for every regime, the layout before tuning was per
regime), the preset's [settings.system.trainer].
"""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from specbench.core.defaults import MAX_BUDGET_S, MAX_SEEDS, TIMEOUT_FACTOR, Cadence
from specbench.core.errors import UsageError
from specbench.core.records import REGIMES, finite_number
from specbench.registries import SYSTEMS, TRAINERS

CADENCE_KEYS = tuple(f.name for f in fields(Cadence))  # what a preset's [cadence] may set

HERE = Path(__file__).parent
PRESETS = sorted(p.stem for p in HERE.glob("*.toml") if p.stem != "tuned")
TUNED = HERE / "tuned.toml"
# The preset each entry point takes when none is named, said at its start: `run` (and `make_job`, so the asv suite and
# the work measures) a smoke-sized sweep; `tune`, the studies and the report's reference seeds the reference's.
SWEEP_PRESET = "quick"
REFERENCE_PRESET = "paper"


@dataclass
class Preset:
    name: str
    systems: list[str]
    trainers: list[str]
    regimes: list[str]
    seeds: int
    # Training seconds per run: a number for every system and regime, or a table {system: seconds or {regime:
    # seconds}} whose `default` entry covers what it does not name (budget_s_for): the one source of a run's budget.
    budget_s: float | dict
    targets: dict[str, float] = field(default_factory=dict)  # overrides of the systems' own targets
    noise: float = 0.0
    cadence: dict = field(default_factory=dict)  # overrides of specbench.core.defaults.Cadence; resolved in full
    timeout_factor: float = TIMEOUT_FACTOR
    settings: dict = field(default_factory=dict)
    system_params: dict = field(default_factory=dict)
    why: str = ""
    description: str = ""
    tuned: str = ""  # the tuned-settings file; empty: the package's tuned.toml


def load_or_default(name_or_path: str | None, default: str) -> tuple[Preset, list[str]]:
    """The preset named, else `default`, and what a command says of it at its start: which preset, where it took its
    default (`run` and `tune` default to different presets)."""
    said = [] if name_or_path else [f"preset {default} (the default; --preset to choose)"]
    return load_preset(name_or_path or default), said


def read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def load_preset(name_or_path: str) -> Preset:
    path = Path(name_or_path)
    if not path.suffix:
        if name_or_path not in PRESETS:
            raise UsageError(f"unknown preset {name_or_path!r}; valid presets: {', '.join(PRESETS)}")
        path = HERE / f"{name_or_path}.toml"
    raw = read_toml(path)
    raw.setdefault("name", path.stem)
    raw.setdefault("trainers", TRAINERS.names())  # none named: every registered trainer, plugins included
    if isinstance(raw.get("budgets"), dict):  # the layout before issue 35: budget_s a number, [budgets] overrides
        old = raw.pop("budgets")
        raw["budget_s"] = {**({"default": raw["budget_s"]} if "budget_s" in raw else {}), **old}
    if raw.get("tuned"):
        raw["tuned"] = str((path.parent / raw["tuned"]).resolve())
    try:
        preset = Preset(**raw)
    except TypeError as exc:
        raise UsageError(f"broken preset {path}: {exc}") from None
    check(preset, path)
    preset.cadence = asdict(Cadence(**preset.cadence))
    return preset


def check(preset: Preset, where) -> None:
    for key in ("systems", "trainers", "regimes"):
        if not (isinstance(getattr(preset, key), list) and all(isinstance(n, str) for n in getattr(preset, key))):
            raise UsageError(f"{where}: {key} must be a list of names")
    for key in ("cadence", "settings", "system_params", "targets"):
        if not isinstance(getattr(preset, key), dict):
            raise UsageError(f"{where}: [{key}] must be a table")
    for kind, names, valid in (("systems", preset.systems, SYSTEMS), ("trainers", preset.trainers, TRAINERS),
                               ("regimes", preset.regimes, REGIMES)):
        bad = [n for n in names if n not in valid]
        if bad:
            raise UsageError(f"{where}: unknown {kind} {', '.join(bad)}; valid {kind}: {', '.join(valid)}")
    for key, value in preset.targets.items():
        if not _positive_number(value):
            raise UsageError(f"{where}: target for {key} must be a positive number, got {value!r}")
    _check_budget_s(preset, where)
    if not (isinstance(preset.seeds, int) and not isinstance(preset.seeds, bool) and 0 < preset.seeds <= MAX_SEEDS):
        raise UsageError(f"{where}: seeds must be a positive integer (at most {MAX_SEEDS}), got {preset.seeds!r}")
    if not _positive_number(preset.timeout_factor) or not (_positive_number(preset.noise) or preset.noise == 0):
        raise UsageError(f"{where}: timeout_factor must be positive and noise non-negative")
    for key, value in preset.cadence.items():
        if key not in CADENCE_KEYS or not _positive_number(value):
            raise UsageError(f"{where}: cadence.{key} must be one of {', '.join(CADENCE_KEYS)} and positive")


def _check_budget_s(preset: Preset, where) -> None:
    """budget_s is a number of seconds, or a table whose keys are the preset's systems (or `default`) and whose
    values are seconds or {regime: seconds}; either way every system and regime of the preset has one."""
    table = preset.budget_s if isinstance(preset.budget_s, dict) else {"default": preset.budget_s}
    for key, entry in table.items():
        name = "budget_s" if not isinstance(preset.budget_s, dict) else f"budget_s.{key}"
        if key != "default" and key not in preset.systems:
            raise UsageError(f"{where}: {name} names no system of the preset's ({', '.join(preset.systems)}) and "
                             "is not `default`")
        for regime, value in (entry.items() if isinstance(entry, dict) and key != "default" else [("", entry)]):
            if regime and regime not in REGIMES:
                raise UsageError(f"{where}: {name}.{regime} is not a regime ({', '.join(REGIMES)})")
            if not _positive_number(value) or value > MAX_BUDGET_S:
                raise UsageError(f"{where}: {name}{'.' * bool(regime)}{regime} must be a positive number of seconds "
                                 f"(at most {MAX_BUDGET_S:g}), got {value!r}")
    for system in preset.systems:
        for regime in preset.regimes:
            budget_s_for(preset, system, regime)


def _positive_number(x) -> bool:
    """A finite number above zero: the check records use (records.finite_number), plus the sign."""
    return finite_number(x) and x > 0


def tuned_path(preset: Preset | None = None) -> Path:
    return Path(preset.tuned) if preset is not None and preset.tuned else TUNED


_TUNED: dict[Path, tuple[tuple[int, int], dict]] = {}  # path -> (the file's version, its settings)


def tuned_settings(preset: Preset | None = None) -> dict:
    """The tuned settings as {system: {trainer: settings}} (empty when the file does not exist yet). Read once per
    version of the file (its modification time and size), not once per job: a sweep of 10,000 seeds plans
    hundreds of thousands of jobs from it, and a file `specbench tune` rewrites is read again. The table is shared
    by every caller: read it, never change it."""
    path = tuned_path(preset)
    try:
        stat = path.stat()
    except OSError:
        return {}
    version = (stat.st_mtime_ns, stat.st_size)
    if _TUNED.get(path, (None,))[0] != version:
        _TUNED[path] = version, read_toml(path)
    return _TUNED[path][1]


def budget_s_for(preset: Preset, system: str, regime: str) -> float:
    """The training seconds of a run of `system` in `regime`, from the preset's budget_s: the number, or the table's
    entry for the system (and regime), else its `default`. A UsageError where it has none."""
    seconds = preset.budget_s
    if isinstance(seconds, dict):
        seconds = seconds.get(system, seconds.get("default"))
        if isinstance(seconds, dict):
            seconds = seconds.get(regime, preset.budget_s.get("default"))
    if seconds is None:
        raise UsageError(f"preset {preset.name} has no budget_s for {system} / {regime}: add it (or a default) to its "
                         "[budget_s] table, or give --budget")
    return float(seconds)


def budget_s_range(preset: Preset) -> tuple[float, float]:
    """The shortest and the longest budget_s the preset gives (its cap: the `paper` preset's 45 s)."""
    table = preset.budget_s if isinstance(preset.budget_s, dict) else {"default": preset.budget_s}
    values = [float(v) for entry in table.values() for v in (entry.values() if isinstance(entry, dict) else [entry])]
    return min(values), max(values)


def budget_s_words(preset: Preset) -> str:
    """The preset's budget_s in words: "15 s", or "10 to 45 s by system and regime"."""
    low, high = budget_s_range(preset)
    return f"{low:g} s" if low == high else f"{low:g} to {high:g} s by system and regime"


def budget_s_replaced(preset: Preset, budget_s: float) -> str:
    """The line a command says when --budget replaces the preset's budget_s."""
    return f"--budget {budget_s:g} s for every run replaces preset {preset.name}'s budget_s ({budget_s_words(preset)})"


# A regime that has no tuned entry of its own takes those of the regime it derives from: `irregular` samples as many
# trajectories and times as `dense` (every trainer alike, so the regimes study compares each trainer at its dense
# settings).
SETTINGS_FROM = {"irregular": "dense"}


def tuned_entry(tuned: dict, system: str, regime: str, trainer: str) -> dict | None:
    """The tuned entry of (system, regime, trainer) in a tuned-settings table: its regime's, else the regime's it
    derives from (SETTINGS_FROM), else one for every regime (tuned[system][trainer]); None when tuning chose none."""
    by_system = tuned.get(system, {})
    return (by_system.get(regime, {}).get(trainer) or by_system.get(SETTINGS_FROM.get(regime), {}).get(trainer)
            or (by_system.get(trainer) if trainer not in REGIMES else None))


def config_for(preset: Preset, system: str, regime: str, trainer: str) -> dict:
    entry = tuned_entry(tuned_settings(preset), system, regime, trainer) or {}
    tuned = {k: v for k, v in entry.items() if not k.startswith("tuned_")}
    return {**tuned, **preset.settings.get(system, {}).get(trainer, {})}
