"""Presets: TOML files beside this module. A preset names the sweep (systems, trainers, regimes, seeds, budget)
and each system's target; per-trainer, per-system settings come from `tuned.toml`, written by `specbench tune`.

A job's config is resolved in this order, later winning: the trainer's defaults, tuned.toml[system][trainer],
the preset's [settings.system.trainer].
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from specbench.errors import UsageError

HERE = Path(__file__).parent
PRESETS = sorted(p.stem for p in HERE.glob("*.toml") if p.stem != "tuned")
TUNED = HERE / "tuned.toml"


@dataclass
class Preset:
    name: str
    description: str
    systems: list[str]
    trainers: list[str]
    regimes: list[str]
    seeds: int
    budget_s: float
    targets: dict[str, float]
    noise: float = 0.0
    cadence: dict = field(default_factory=dict)
    timeout_factor: float = 3.0  # a run's process is killed after timeout_factor * budget + setup allowance
    settings: dict = field(default_factory=dict)
    system_params: dict = field(default_factory=dict)
    why: str = ""


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
    try:
        preset = Preset(**raw)
    except TypeError as exc:
        raise UsageError(f"broken preset {path}: {exc}") from None
    check(preset, path)
    return preset


def check(preset: Preset, where) -> None:
    from specbench.systems import SYSTEMS
    from specbench.trainers import TRAINERS

    for kind, names, valid in (("systems", preset.systems, SYSTEMS), ("trainers", preset.trainers, TRAINERS),
                               ("regimes", preset.regimes, ("dense", "sparse"))):
        bad = [n for n in names if n not in valid]
        if bad:
            raise UsageError(f"{where}: unknown {kind} {', '.join(bad)}; valid {kind}: {', '.join(valid)}")
    missing = [s for s in preset.systems if s not in preset.targets]
    if missing:
        raise UsageError(f"{where}: no target for {', '.join(missing)}")
    if not preset.budget_s > 0 or not preset.seeds > 0:
        raise UsageError(f"{where}: budget_s and seeds must be positive")


def tuned_settings() -> dict:
    """tuned.toml as {system: {trainer: settings}} (empty when it does not exist yet)."""
    return read_toml(TUNED) if TUNED.exists() else {}


def config_for(preset: Preset, system: str, trainer: str) -> dict:
    tuned = {k: v for k, v in tuned_settings().get(system, {}).get(trainer, {}).items() if not k.startswith("tuned_")}
    return {**tuned, **preset.settings.get(system, {}).get(trainer, {})}
