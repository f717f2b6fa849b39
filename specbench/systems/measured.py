"""Systems known by their measurements, not their equations: a user's own file (`specbench run --data FILE`) and
the built-in benchmarks of system identification (cascaded tanks, EMPS). Their data are read, never simulated."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from specbench.systems.base import Regime, System
from specbench.systems.measurements import Measurements, Trajectory, read


@dataclass
class Measured(System):
    """A system whose dataset is its measurements. It has one regime, "dense": the data as measured. `dim` is the
    outputs plus the hidden states; `f` is unknown (there is no ground truth to integrate)."""

    kind: ClassVar[str] = "measured"
    # The model structure the system's physics is known to have (`specbench.numerics.vector_field.parse_structure`),
    # or None; used, by every trainer alike, where the parameter `structure` is "declared"
    known_structure: ClassVar[list | None] = None
    # "none": the plain black-box MLP (the default); "declared": `known_structure` (a preset's
    # [system_params.NAME] structure = "declared")
    structure: str = "none"

    def __post_init__(self):
        if self.structure not in ("none", "declared"):
            raise ValueError(f"structure must be 'none' or 'declared', got {self.structure!r}")
        if self.structure == "declared":
            if self.known_structure is None:
                raise ValueError(f"{self.name} declares no model structure (structure = 'none' only)")
            self.model = {**self.model, "structure": self.known_structure}

    @property
    def params(self):
        """Nothing changes a built-in benchmark's data (its files are the package's); the model's structure is the
        one parameter, written where it is not the default."""
        return {"structure": self.structure} if self.structure != "none" else {}

    def measurements(self) -> Measurements:
        raise NotImplementedError

    def _describe(self, m: Measurements) -> None:
        """Set the states, spans and regime from the measurements."""
        self.dim = len(m.outputs) + m.hidden
        self.t_span = float(max(r.t[-1] - r.t[0] for r in m.train))
        self.test_horizon = float(max(r.t[-1] - r.t[0] for r in m.test))
        self.regimes = {"dense": Regime(n_train=len(m.train), n_test=len(m.test),
                                        n_times=max(len(r.t) for r in m.train))}


@dataclass
class MeasuredFile(Measured):
    """The measurements in a file (docs/data-format.md: CSV, or the NPZ `specbench data` writes)."""

    name: str = "file"
    path: str = ""
    regimes: dict = field(default_factory=lambda: {"dense": Regime(0, 0, 0)})

    def __post_init__(self):
        super().__post_init__()
        if self.path:
            self._describe(self.measurements())

    @property
    def params(self):
        return {"path": self.path, **super().params}

    def measurements(self) -> Measurements:
        return read(self.path)


DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Published:
    """A published result on a measured benchmark's test data (free-run simulation), from other hardware: a figure
    to place ours beside, never a ratio."""

    method: str
    figure: str  # "rmse" (the outputs' units) or "r2"
    value: float
    at_least: bool = False  # the paper gives a bound: the figure is at least `value` (R^2 > 0.99)
    seconds: float | None = None  # its training time where the paper gives one
    source: str = ""


# The benchmarks' published results (specbench/systems/data/README.md), by system: what the report places each
# trainer's test RMSE or R^2 among
PUBLISHED = {
    "cascaded-tanks": (
        Published("best linear approximation", "rmse", 0.75, source="Relan et al. 2017"),
        Published("Volterra model", "rmse", 0.54, source="Birpoutsoukis et al. 2018"),
        Published("state space with GP-inspired prior", "rmse", 0.45, source="Svensson and Schon 2017"),
        Published("nonlinear state space, NLSS2 initialisation", "rmse", 0.34, source="Relan et al. 2017"),
        Published("grey box with a physical overflow model", "rmse", 0.18, source="Rogers et al. 2017"),
        Published("neural ODE, truncated simulation error (segments of 128, learned hidden states)", "rmse", 0.33,
                  seconds=533, source="Forgione and Piga 2021"),
        Published("neural ODE, soft-constrained integration (Crank-Nicolson residual penalty)", "rmse", 0.40,
                  seconds=271, source="Forgione and Piga 2021"),
    ),
    "emps": (
        Published("linear models", "r2", 0.5, source="Janot et al. 2019"),
        Published("neural ODE, truncated simulation error (RK4, segments of 64)", "r2", 0.99, at_least=True,
                  seconds=710, source="Forgione and Piga 2021"),
        Published("neural ODE, soft-constrained integration (backward Euler residual)", "r2", 0.99, at_least=True,
                  seconds=342, source="Forgione and Piga 2021"),
    ),
}


@dataclass
class CascadedTanks(Measured):
    """Cascaded tanks (Schoukens et al. 2016): pump voltage in (zero-order hold), the lower tank's level out (V),
    the upper tank's level hidden; one estimation and one test experiment of 1024 samples at Ts = 4 s."""

    name: str = "cascaded-tanks"
    dim: int = 2
    t_span: float = 4092.0
    test_horizon: float = 4092.0
    regimes: dict = field(default_factory=lambda: {"dense": Regime(n_train=1, n_test=1, n_times=1024)})
    # The benchmark's physics, as Forgione and Piga modelled it: the upper tank's level (x1, hidden) changes with
    # itself and the pump (u0) only; the lower's (x0) with both levels and the pump (the upper one's overflow)
    known_structure: ClassVar[list] = [["x0", "x1", "u0"], ["x1", "u0"]]

    def measurements(self) -> Measurements:
        raw = np.genfromtxt(DATA / "cascaded-tanks" / "dataBenchmark.csv", delimiter=",", names=True)
        ts = float(raw["Ts"][0])
        t = ts * np.arange(len(raw))
        runs = [Trajectory(t, raw[y][:, None], t, raw[u][:, None]) for y, u in (("yEst", "uEst"), ("yVal", "uVal"))]
        return Measurements(runs[:1], runs[1:], ("level",), ("pump",), "zoh", hidden=1)


@dataclass
class EMPS(Measured):
    """Electro-mechanical positioning system (Janot et al. 2019): motor force vir * gtau in (N, zero-order hold),
    position out (m), velocity hidden; one estimation and one test experiment, decimated by 5 (5 ms) as Forgione and
    Piga did."""

    name: str = "emps"
    dim: int = 2
    decimate: ClassVar[int] = 5
    t_span: float = 24.835
    test_horizon: float = 24.835
    regimes: dict = field(default_factory=lambda: {"dense": Regime(n_train=1, n_test=1, n_times=4968)})
    # The benchmark's physics (its description's model): position' = velocity (x1, hidden); the velocity changes with
    # itself and the force (u0) only (friction and inertia)
    known_structure: ClassVar[list] = ["=x1", ["x1", "u0"]]

    def measurements(self) -> Measurements:
        from scipy.io import loadmat  # EMPS's files alone need it: the readers' commands do not load scipy.io

        runs = []
        for name in ("DATA_EMPS.mat", "DATA_EMPS_PULSES.mat"):
            raw = loadmat(DATA / "emps" / name)
            force = raw["vir"][:, 0] * float(raw["gtau"][0, 0])
            # The test file's pulses_N (a 0/5 square wave, period 1 s) is not added: the motor command vir already
            # answers them, and the models see vir * gtau alone, as Forgione and Piga drove their test simulation.
            # Measured (issue 38): a model trained on the estimation data simulates the test experiment to R^2 0.992
            # (multiple shooting, 90 s) and 0.996 (spectral, 60 s) driven by vir * gtau, and to R^2 -0.47 and -1.42
            # with the pulses added (-1.34 with them subtracted).
            keep = self.decimate * np.arange(len(force) // self.decimate)
            t = raw["t"][keep, 0] - raw["t"][0, 0]
            runs.append(Trajectory(t, raw["qm"][keep], t, force[keep, None]))
        return Measurements(runs[:1], runs[1:], ("position",), ("force",), "zoh", hidden=1)
