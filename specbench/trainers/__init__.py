"""The built-in trainers: name -> where the class lives ("module:Class", the form entry points use). Adding one is
one module and one line here; a user's own trainer comes in through an entry point or a plugin module
(`specbench.registries`, which holds the registry and imports a class when it is first used). Naming the classes by
path keeps this module free of torch: the report and the gate read trainer names and roles from here and from
the records, without loading a trainer. What a trainer is in the comparison (`role`) and how it is tuned
(`tuning_grid`) it declares itself.
"""
from __future__ import annotations

BUILTIN: dict[str, str] = {
    "spectral": "specbench.trainers.spectral:Spectral",
    "spectral-2stage": "specbench.trainers.spectral:SpectralTwoStage",
    "backprop-rk4": "specbench.trainers.solver:BackpropRK4",
    "backprop-dopri5": "specbench.trainers.solver:BackpropDopri5",
    "adjoint-dopri5": "specbench.trainers.solver:AdjointDopri5",
    "torchode-dopri5": "specbench.trainers.torchode_solver:TorchodeDopri5",
    "torchode-adjoint": "specbench.trainers.torchode_solver:TorchodeAdjoint",
    "vf-node": "specbench.trainers.vf_node:VFNode",
    "multiple-shooting": "specbench.trainers.shooting:MultipleShooting",
}

# The role each trainer had when its records did not yet carry one (records made before 2026-12): a reader gives
# such a record this role. Frozen history: a test checks it against the classes' own `role`.
RECORDED_ROLES: dict[str, str] = {
    "spectral": "candidate",
    "spectral-2stage": "ablation",
    "backprop-rk4": "baseline",
    "backprop-dopri5": "baseline",
    "adjoint-dopri5": "baseline",
    "torchode-dopri5": "baseline",
    "torchode-adjoint": "baseline",
}

__all__ = ["BUILTIN", "RECORDED_ROLES"]
