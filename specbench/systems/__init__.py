"""The registry of reference systems: name -> class. Adding a built-in system is one module and one line here;
a user's own system comes in through an entry point or a plugin module (specbench.registry)."""
from __future__ import annotations

from specbench.errors import UsageError
from specbench.registry import Registry
from specbench.systems.base import Regime, System
from specbench.systems.cubic_oscillator import CubicOscillator
from specbench.systems.lorenz import Lorenz
from specbench.systems.lotka_volterra import LotkaVolterra
from specbench.systems.network import Network
from specbench.systems.oscillator import Oscillator

SYSTEMS: Registry = Registry("system", "specbench.systems", "specbench.systems.base.System", {
    "oscillator": Oscillator,
    "cubic-oscillator": CubicOscillator,
    "lotka-volterra": LotkaVolterra,
    "lorenz": Lorenz,
    "network": Network,
})


def get_system(name: str, **params) -> System:
    """The system `name`, built with `params` (e.g. `n=128` for `network`); UsageError for an unknown name."""
    cls = SYSTEMS.get_class(name)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad parameters for system {name!r}: {exc}") from None


__all__ = ["SYSTEMS", "Regime", "System", "get_system"]
