"""asv suites over specbench: per-step cost, evaluation cost, the training memory, and tracked work measures.

Thin by design (as scipy's and numpy's benchmarks/): the measured code lives in `specbench.running.asv_runs`.
Timing suites take at least 6 samples a side (rounds x repeat), so `asv continuous` (never with --quick, which
takes one) can use its Mann-Whitney test; the tracks are deterministic counts and bytes, or the protocol's memory.
"""
import math

from specbench.core import measures
from specbench.numerics.metric import train_metric
from specbench.registries import candidate
from specbench.running import asv_runs

SYSTEMS = asv_runs.systems()
TRAINERS = asv_runs.trainers()


class TimeStep:
    """Wall time of one training iteration of each trainer on each system (dense data, tuned settings)."""

    params = [SYSTEMS, TRAINERS]
    param_names = ["system", "trainer"]
    timeout = 300
    number = 1  # one step is milliseconds (spectral) to a quarter second (adjoint on network)
    rounds = 2  # two processes, so a slow moment of the machine is not the whole sample
    repeat = (5, 20, 10.0)  # 5 to 20 steps per round, up to 10 s: 10 to 40 samples a side
    warmup_time = 0.5

    def setup(self, system, trainer):
        self.trainer = asv_runs.make_trainer(system, trainer)
        self.trainer.step()  # first-step allocations are not the per-iteration cost

    def time_step(self, system, trainer):
        self.trainer.step()


class TimeMetric:
    """Wall time of one evaluation of the common metric (float64 dopri5 rollouts of all training trajectories)."""

    params = [SYSTEMS]
    param_names = ["system"]
    timeout = 300
    number = 1
    rounds = 2
    repeat = (3, 10, 10.0)  # 6 to 20 samples a side: enough for asv's rank test at its p < 0.002

    def setup(self, system):
        self.trainer = asv_runs.make_trainer(system, candidate())
        for _ in range(20):
            self.trainer.step()

    def time_metric(self, system):
        train_metric(self.trainer.model, self.trainer.data)


class _MemoryRuns:
    """Protocol runs, one fresh process each, made once for the memory tracks (asv keys setup_cache by its
    source location, so subclasses share one result)."""

    timeout = 1800

    def setup_cache(self):
        return asv_runs.memory_runs()


class TrackMemory(_MemoryRuns):
    """The memory training needs, as every report measures it (`specbench.core.measures.peak_memory`): what the
    trainer's setup kept plus the peak growth during training, over the process after imports and data. Not the
    whole process's peak RSS, which importing torch and building the data dominate."""

    params = [SYSTEMS, TRAINERS]
    param_names = ["system", "trainer"]

    def track_peak_memory(self, runs, system, trainer):
        v = measures.peak_memory(runs[(system, trainer)])
        return math.nan if v is None else v

    track_peak_memory.unit = "bytes"


class _WorkRuns:
    """Iteration-budgeted runs (`specbench.running.work_measures`, the values `specbench work --check` gates exactly),
    made once for the work tracks."""

    timeout = 1800

    def setup_cache(self):
        return asv_runs.work_runs()


class TrackWork(_WorkRuns):
    """Work measures on a fixed seed and a fixed number of iterations: the same everywhere (docs/asv-and-gate.md)."""

    params = [SYSTEMS, TRAINERS]
    param_names = ["system", "trainer"]

    def _value(self, runs, system, trainer, key):
        v = runs[(system, trainer)][key]
        return math.nan if v is None else v

    def track_nfe_per_iteration(self, runs, system, trainer):
        return self._value(runs, system, trainer, "nfe_per_iteration")

    track_nfe_per_iteration.unit = "evaluations"

    def track_metric_after_n(self, runs, system, trainer):
        return self._value(runs, system, trainer, "metric_after_n")

    track_metric_after_n.unit = "NMSE"

    def track_iterations_to_target(self, runs, system, trainer):
        """Sustained iterations to 3x the system's target within the cap; NaN when not reached."""
        return self._value(runs, system, trainer, "iterations_to_target")

    track_iterations_to_target.unit = "iterations"

    def track_held_bytes(self, runs, system, trainer):
        return self._value(runs, system, trainer, "held_bytes")

    track_held_bytes.unit = "bytes"
