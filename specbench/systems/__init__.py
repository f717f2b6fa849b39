"""The built-in reference systems: name -> class. Adding one is one module and one line here; a user's own system
comes in through an entry point or a plugin module (`specbench.registries`, which holds the registry)."""
from __future__ import annotations

from specbench.systems.base import Regime, System
from specbench.systems.cubic_oscillator import CubicOscillator
from specbench.systems.lorenz import Lorenz
from specbench.systems.lotka_volterra import LotkaVolterra
from specbench.systems.measured import EMPS, CascadedTanks, MeasuredFile
from specbench.systems.network import Network
from specbench.systems.oscillator import Oscillator

BUILTIN: dict[str, type[System]] = {
    "oscillator": Oscillator,
    "cubic-oscillator": CubicOscillator,
    "lotka-volterra": LotkaVolterra,
    "lorenz": Lorenz,
    "network": Network,
    "cascaded-tanks": CascadedTanks,  # measured: Schoukens et al. 2016 (specbench/systems/data/README.md)
    "emps": EMPS,  # measured: Janot et al. 2019
    "file": MeasuredFile,  # the user's own measurements: `specbench run --data FILE`
}

__all__ = ["BUILTIN", "Regime", "System"]
