"""Performance profiles (Dolan and Moré 2002, "Benchmarking optimization software with performance profiles"):
which trainer to use, ranked over every headline (system, regime) cell at once. Pure functions of the records.

- In each cell, each trainer's time t is its median time to target (the first crossing) over seeds
  (`measures.time_to_target`; a run that did not reach it counts as never, +inf, in the median as in
  `verdicts.median`). A trainer with no runs in a cell where others ran counts as never reaching there.
- Its performance ratio r = t / (the least t in the cell): 1 for the fastest, inf when it never reached.
- Its profile rho(tau) = the fraction of cells with r <= tau, for tau on a log axis from 1 to R_MAX.
- A cell that no trainer solves ranks nobody: it is left out, and counted.
Two numbers per trainer: its score, the area under rho over log(tau) in [0, log R_MAX] divided by log R_MAX (1:
the fastest in every cell; 0: never within R_MAX x the fastest), as AlgoPerf scores submissions; and the cells it
is fastest in (r = 1; a tie counts for each).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from specbench.claims.verdicts import group, median, roles_in, trainer_order
from specbench.core import measures
from specbench.core.records import Record

R_MAX = 100.0  # the profile's last tau: a trainer more than 100x slower than the fastest counts as not solving


@dataclass(frozen=True)
class Profile:
    """One trainer's performance ratios, one per cell of the profile (inf where it never reached the target)."""

    trainer: str
    role: str
    ratios: tuple[float, ...]

    def rho(self, tau: float) -> float:
        """The fraction of cells in which the trainer is within tau x the fastest."""
        return sum(r <= tau for r in self.ratios) / len(self.ratios)

    @property
    def area(self) -> float:
        """The area under rho over log(tau) in [0, log R_MAX], over log R_MAX: the mean over cells of
        1 - log(r) / log(R_MAX), 0 for r beyond R_MAX (the integral of the step function, in closed form)."""
        return sum(max(0.0, 1.0 - math.log(r) / math.log(R_MAX)) for r in self.ratios) / len(self.ratios)

    @property
    def best(self) -> int:
        """The cells the trainer is fastest in (ties count for each)."""
        return sum(r == 1.0 for r in self.ratios)

    @property
    def solved(self) -> int:
        """The cells in which the trainer reached the target (in the median over seeds)."""
        return sum(math.isfinite(r) for r in self.ratios)


@dataclass(frozen=True)
class Profiles:
    """The profiles of every trainer (registry order) over `cells`, the (system, regime) cells some trainer
    solved; `left_out`: the cells no trainer solved."""

    cells: tuple[tuple[str, str], ...]
    left_out: tuple[tuple[str, str], ...]
    profiles: tuple[Profile, ...]

    @property
    def shown(self) -> bool:
        """Whether a ranking says anything: at least two trainers and a solved cell."""
        return len(self.profiles) >= 2 and bool(self.cells)


def median_times(records: list[Record]) -> dict[tuple[str, str], dict[str, float]]:
    """(system, regime) -> trainer -> its median time to target over seeds (inf: not reached in the median), for
    every trainer of `records` in every cell (inf where it has no runs), cells sorted."""
    groups = group(records)
    trainers = sorted({t for _, _, t in groups}, key=trainer_order)
    return {(system, regime): {t: median(measures.time_to_target(r) for r in groups[(system, regime, t)])
                               if (system, regime, t) in groups else math.inf for t in trainers}
            for system, regime in sorted({(s, g) for s, g, _ in groups})}


def performance_ratios(times: dict[str, float]) -> dict[str, float] | None:
    """trainer -> its time over the least time of the cell (inf where it never reached); None when none did. A
    time of 0 (the target met at the first evaluation) ties only with another 0: anything later is inf x as slow."""
    fastest = min(times.values(), default=math.inf)
    if not math.isfinite(fastest):
        return None
    return {t: x / fastest if fastest > 0 else 1.0 if x == 0 else math.inf for t, x in times.items()}


def profiles(records: list[Record]) -> Profiles:
    """The performance profiles of the headline records' trainers (all roles) over their (system, regime)
    cells."""
    by_cell = {cell: performance_ratios(times) for cell, times in median_times(records).items()}
    kept = {cell: ratios for cell, ratios in by_cell.items() if ratios is not None}
    roles = roles_in(records)
    trainers = sorted(roles, key=trainer_order)
    return Profiles(tuple(kept), tuple(cell for cell, ratios in by_cell.items() if ratios is None),
                    tuple(Profile(t, roles[t], tuple(ratios[t] for ratios in kept.values())) for t in trainers)
                    if kept else ())
