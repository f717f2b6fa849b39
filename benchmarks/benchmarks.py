"""asv suites over specbench: per-step cost, evaluation cost, peak memory, and tracked training outcomes.

Thin by design (as scipy's and numpy's benchmarks/): the measured code lives in `specbench.bench`.
"""
import math

from specbench import bench
from specbench.evaluate import train_metric
from specbench.report.verdicts import speedup
from specbench.trainers import candidate, with_role

SYSTEMS = bench.systems()
TRAINERS = bench.trainers()


class TimeStep:
    """Wall time of one training iteration of each trainer on each system (dense data, tuned settings)."""

    params = [SYSTEMS, TRAINERS]
    param_names = ["system", "trainer"]
    timeout = 300
    number = 1  # one step is milliseconds (spectral) to a quarter second (adjoint on network)
    repeat = (5, 20, 10.0)
    warmup_time = 0.5

    def setup(self, system, trainer):
        self.trainer = bench.make_trainer(system, trainer)
        self.trainer.step()  # first-step allocations are not the per-iteration cost

    def time_step(self, system, trainer):
        self.trainer.step()


class TimeMetric:
    """Wall time of one evaluation of the common metric (float64 dopri5 rollouts of all training trajectories)."""

    params = [SYSTEMS]
    param_names = ["system"]
    timeout = 300
    number = 1
    repeat = (3, 10, 10.0)

    def setup(self, system):
        self.trainer = bench.make_trainer(system, "spectral")
        for _ in range(20):
            self.trainer.step()

    def time_metric(self, system):
        train_metric(self.trainer.model, self.trainer.data)


class PeakMemTrain:
    """Peak resident memory of the benchmark process during 20 training iterations."""

    params = [SYSTEMS, TRAINERS]
    param_names = ["system", "trainer"]
    timeout = 600

    def setup(self, system, trainer):
        self.trainer = bench.make_trainer(system, trainer)

    def peakmem_train(self, system, trainer):
        for _ in range(20):
            self.trainer.step()


class _SharedRuns:
    """Training runs made once for every track_* benchmark: asv keys setup_cache by its source location, so the
    subclasses share one result."""

    timeout = 1800

    def setup_cache(self):
        return bench.short_runs()


class TrackRun(_SharedRuns):
    """Outcomes of a short training run (SPECBENCH_ASV_BUDGET seconds) per system and trainer."""

    params = [SYSTEMS, TRAINERS]
    param_names = ["system", "trainer"]

    def track_time_to_target(self, runs, system, trainer):
        t = runs[(system, trainer)]["time_to_target_s"]
        return math.nan if t is None else t

    track_time_to_target.unit = "seconds"

    def track_test_mse(self, runs, system, trainer):
        v = runs[(system, trainer)]["test_mse"]
        return math.nan if v is None else v

    track_test_mse.unit = "MSE"

    def track_final_metric(self, runs, system, trainer):
        v = runs[(system, trainer)]["final_train_loss"]
        return math.nan if v is None else v

    track_final_metric.unit = "NMSE"


class TrackSpeedup(_SharedRuns):
    """Spectral's speed-up to the target over each baseline, from the same runs (a lower bound where the baseline
    did not reach the target: its budget over spectral's time)."""

    params = [SYSTEMS, [b for b in with_role("baseline") if b in TRAINERS]]
    param_names = ["system", "baseline"]

    def setup(self, runs, system, baseline):
        if (system, candidate()) not in runs:
            raise NotImplementedError(f"{candidate()} is not in SPECBENCH_ASV_TRAINERS")

    def track_speedup(self, runs, system, baseline):
        return speedup([runs[(system, candidate())]], [runs[(system, baseline)]]).value

    track_speedup.unit = "x"
