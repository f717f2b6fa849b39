"""The registry of reference systems: name -> class. Adding a system is one module and one line here."""
from __future__ import annotations

from specbench.errors import UsageError
from specbench.systems.base import Regime, System
from specbench.systems.cubic_oscillator import CubicOscillator
from specbench.systems.lorenz import Lorenz
from specbench.systems.lotka_volterra import LotkaVolterra
from specbench.systems.network import Network
from specbench.systems.oscillator import Oscillator

SYSTEMS: dict[str, type[System]] = {
    "oscillator": Oscillator,
    "cubic-oscillator": CubicOscillator,
    "lotka-volterra": LotkaVolterra,
    "lorenz": Lorenz,
    "network": Network,
}


def get_system(name: str, **params) -> System:
    """The system `name`, built with `params` (e.g. `n=128` for `network`); UsageError for an unknown name."""
    if name not in SYSTEMS:
        raise UsageError(f"unknown system {name!r}; valid systems: {', '.join(SYSTEMS)}")
    try:
        return SYSTEMS[name](**params)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad parameters for system {name!r}: {exc}") from None


__all__ = ["SYSTEMS", "Regime", "System", "get_system"]
