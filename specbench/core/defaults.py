"""The protocol's shared defaults and limits, each written once: every command, preset and reader imports them.

- `Cadence`: when the common metric is evaluated (training seconds: at the start, then every 10% of the time so
  far, at least 0.01 s and at most 2 s apart): a first crossing after 0.1 s is seen at most 10% late (a step can
  add its own length), and a 20 s run costs about 60 evaluations (their time is not training time). Presets may
  override any of the three.
- limits on what a command accepts: beyond them a number is a typo, not a request.
- the gate's default factor and a run's time limit (`run_limit`: TIMEOUT_FACTOR x its budget plus a setup allowance,
  in CPU seconds of its process, with a wall-clock backstop WALL_BACKSTOP times that).
- threads: the default (this machine's cores, or what OMP_NUM_THREADS says) and how a run is held to its count.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import psutil
from threadpoolctl import threadpool_limits

MAX_BUDGET_S = 7 * 24 * 3600.0  # a week of training per run
MAX_SEEDS = 10_000
MAX_THREADS = 1024
# --workers: processes at once on this machine. Past the cores they only time-share them (said); past this many per
# core a number is a typo, not a request: each is a process of its own, and 1000 of them on 2 cores run 2 at a time.
MAX_WORKERS_PER_CORE = 4
GATE_FACTOR = 1.25  # `specbench gate`: a regression is a slowdown beyond this factor and the noise
TIMEOUT_FACTOR = 3.0  # a run's process is killed after TIMEOUT_FACTOR * budget + the setup allowance (CPU seconds)
# Process start, data generation, the warm-up (the run's own trainer for one step) and the final test rollouts, on
# top of the budget: the slowest step measured (torchode's adjoint on whole trajectories of 2001 times) takes 46 s.
SETUP_ALLOWANCE_S = 180.0
# A run is limited by the CPU time its process uses, which a busy machine does not stretch (issue 36: under a test
# suite on both cores, a healthy 20 s run's untimed evaluations took 131-172 s of wall time and it was killed as a
# "timeout"); a process that waits without using the CPU (a deadlock, a sleep) is still killed after WALL_BACKSTOP
# times its limit in wall-clock seconds: a share of a quarter of a core still finishes.
WALL_BACKSTOP = 4.0
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")  # read by BLAS at start-up


@dataclass
class Cadence:
    """After an evaluation at training time t, the next is due at t + `resolution` * t, the gap at least `first`
    and at most `max_interval`: a crossing between two evaluations is then seen at most `resolution` of its time
    late, the fairness rule for the fastest trainer (a 1.25x growth of the gap, before, allowed 25%)."""

    first: float = 0.01
    resolution: float = 0.1
    max_interval: float = 2.0

    def next_after(self, t: float) -> float:
        return t + min(max(self.resolution * t, self.first), self.max_interval)


def run_limit(budget_s: float, factor: float = TIMEOUT_FACTOR) -> float:
    """A run's time limit in seconds: `factor` x its budget plus the setup allowance. The executor counts it in CPU
    seconds of the run's process (per thread it may use) and kills a process that waits longer than WALL_BACKSTOP
    times it on the wall clock (`specbench.running.executors.Limit`). Every entry point (sweeps, tuning, studies, asv)
    uses this one formula."""
    return factor * budget_s + SETUP_ALLOWANCE_S


def cores() -> int:
    """Logical cores of this machine (at least 1)."""
    return psutil.cpu_count(logical=True) or 1


def default_threads() -> int:
    """Threads a run gets when none are asked for: what OMP_NUM_THREADS says, else this machine's cores."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return cores()


def thread_environment(threads: int) -> dict[str, str]:
    """The environment variables that hold a new process's BLAS and OpenMP pools to `threads`."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def limit_threads(threads: int):
    """Hold this process's BLAS and OpenMP pools to `threads` (threadpoolctl); a context manager that restores
    them, or call and keep."""
    return threadpool_limits(limits=threads)
