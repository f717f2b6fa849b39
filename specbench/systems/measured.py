"""Systems known by their measurements, not their equations: a user's own file (`specbench run --data FILE`) and
the built-in benchmarks of system identification (cascaded tanks, EMPS). Their data are read, never simulated."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from specbench.measurements import Measurements, read
from specbench.systems.base import Regime, System


@dataclass
class Measured(System):
    """A system whose dataset is its measurements. It has one regime, "dense": the data as measured. `dim` is the
    outputs plus the hidden states; `f` is unknown (there is no ground truth to integrate)."""

    kind: ClassVar[str] = "measured"

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
        if self.path:
            self._describe(self.measurements())

    @property
    def params(self):
        return {"path": self.path}

    def measurements(self) -> Measurements:
        return read(self.path)

