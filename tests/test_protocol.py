import json
import os
import signal
import time

import pytest

from specbench.core.records import CorruptRecord, load, load_dir, record_paths
from specbench.core.records import problems_of
from specbench.running.protocol import Cadence, Job, run_job
from tests.helpers import one_line_exit_2, run_cli, save, start_cli, wait_for


def job(**kw):
    base = dict(system="oscillator", trainer="spectral", regime="dense", seed=0, budget_s=1.0, target=1e-2,
                config={}, threads=1, cadence={"first": 0.02, "max_interval": 0.2})
    return Job(**{**base, **kw})


class FakeClock:
    """The protocol's clock (its `time` module) on a fake time that moves only when a test moves it."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


STEP = 2 ** -7  # fake seconds per training step: a power of two, so that sums of them are exact


@pytest.mark.parametrize("delay", [0.0, 0.25])
def test_training_clock_counts_steps_only(monkeypatch, delay):
    """On a fake clock every training step takes STEP s and every evaluation `delay` s. The metric after k steps is
    1/(k+1), so the target 5e-2 is first met after 19 steps: the record says so at the training time of the first
    evaluation at or after step 19, on the curve's training clock, whatever an evaluation costs; training seconds
    are STEP per step to the budget, evaluation seconds `delay` per evaluation on the curve."""
    import specbench.running.protocol as protocol
    import specbench.trainers.base as base

    clock = FakeClock()
    monkeypatch.setattr(protocol, "time", clock)  # the protocol's clock only: rollouts keep their real deadline
    original = base.Trainer.step

    def timed_step(self):
        loss = original(self)
        self.model.steps_taken = self.iteration  # what the metric below reads
        clock.now += STEP
        return loss

    def evaluate(model, data):
        clock.now += delay
        return 1.0 / (getattr(model, "steps_taken", 0) + 1)

    monkeypatch.setattr(base.Trainer, "step", timed_step)
    record = run_job(job(budget_s=1.0, target=5e-2), evaluate=evaluate)
    assert record.status == "ok" and record.iterations == 128  # 1 s of training at STEP s a step
    assert record.train_seconds == 1.0 and record.eval_seconds == delay * len(record.curve)
    assert all(t == STEP * k and metric == 1.0 / (k + 1) for t, k, metric in record.curve)
    reached = min(k for _, k, _ in record.curve if k >= 19)  # the first evaluation at or below the target
    assert record.time_to_target_s == record.sustained_s == STEP * reached  # the metric falls: kept once crossed


def test_time_to_target_is_the_first_crossing_and_the_model_judged_is_the_best_checkpoint(monkeypatch):
    """On the fake clock, a metric that falls below the target at step 19, is lowest at step 40 and climbs back
    above it after step 60: the time to target is the first crossing, the sustained time is None (the target was
    not kept), the best checkpoint is step 40's evaluation, and the test errors are of the weights at that
    evaluation, not of the model at the end of the budget."""
    import torch

    import specbench.running.protocol as protocol
    import specbench.trainers.base as base

    clock = FakeClock()
    monkeypatch.setattr(protocol, "time", clock)
    original = base.Trainer.step
    weights = {}  # iteration -> the weights the metric saw there

    def timed_step(self):
        loss = original(self)
        self.model.steps_taken = self.iteration
        clock.now += STEP
        return loss

    def evaluate(model, data):
        k = getattr(model, "steps_taken", 0)
        weights[k] = [p.detach().clone() for p in model.parameters()]
        return 1.0 / (k + 1) if k <= 40 else 1.0 / 41 + (k - 40) * 1e-3

    judged = []

    def test_errors(model, data):
        judged.append([p.detach().clone() for p in model.parameters()])
        return 1.0, 1.0, None

    monkeypatch.setattr(base.Trainer, "step", timed_step)
    monkeypatch.setattr(protocol, "test_errors", test_errors)
    record = run_job(job(budget_s=1.0, target=5e-2), evaluate=evaluate)
    iterations = [k for _, k, _ in record.curve]
    first = min(k for k in iterations if k >= 19)
    best = max(k for k in iterations if k <= 40)  # the metric falls to step 40, then climbs
    assert record.time_to_target_s == STEP * first and record.sustained_s is None
    assert record.best_checkpoint == {"seconds": STEP * best, "iteration": best, "metric": 1.0 / (best + 1)}
    assert all(torch.equal(a, b) for a, b in zip(judged[0], weights[best]))
    assert not all(torch.equal(a, b) for a, b in zip(judged[0], weights[record.iterations]))


def test_a_run_that_diverges_after_crossing_keeps_its_crossing_and_its_best_checkpoint(monkeypatch):
    """On the fake clock the metric falls as 1/(k+1) and step 60 diverges: the run is 'diverged', but its first
    crossing (step 19's evaluation) and its best checkpoint (the last evaluation before step 60) stand, and the
    test errors are that checkpoint's; the sustained time needs the budget's end, so there is none."""
    import torch

    import specbench.running.protocol as protocol
    import specbench.trainers.base as base
    from specbench.core import measures
    from specbench.core.errors import Diverged

    clock = FakeClock()
    monkeypatch.setattr(protocol, "time", clock)
    original = base.Trainer.step
    weights = {}

    def timed_step(self):
        clock.now += STEP
        if self.iteration == 60:
            raise Diverged("non-finite loss at iteration 60")
        loss = original(self)
        self.model.steps_taken = self.iteration
        return loss

    def evaluate(model, data):
        k = getattr(model, "steps_taken", 0)
        weights[k] = [p.detach().clone() for p in model.parameters()]
        return 1.0 / (k + 1)

    judged = []

    def test_errors(model, data):
        judged.append([p.detach().clone() for p in model.parameters()])
        return 2e-3, 3e-3, None

    monkeypatch.setattr(base.Trainer, "step", timed_step)
    monkeypatch.setattr(protocol, "test_errors", test_errors)
    record = run_job(job(budget_s=1.0, target=5e-2), evaluate=evaluate)
    iterations = [k for _, k, _ in record.curve]
    first, best = min(k for k in iterations if k >= 19), max(iterations)
    assert record.status == "diverged" and "iteration 60" in record.error and record.iterations == 60
    assert record.time_to_target_s == measures.time_to_target(record) == STEP * first
    assert record.sustained_s is None and record.best_checkpoint["iteration"] == best < 60
    assert (record.test_mse, record.test_nmse) == (2e-3, 3e-3) and measures.test_mse(record) == 2e-3
    assert len(judged) == 1 and all(torch.equal(a, b) for a, b in zip(judged[0], weights[best]))
    assert problems_of(record.to_dict()) == []


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_the_learning_rate_follows_the_schedule_over_the_budget(monkeypatch, schedule):
    """Before every step the trainer is told the share of the budget spent: constant keeps lr, cosine decays it
    from lr to 0 as 0.5 (1 + cos(pi share))."""
    import math

    import specbench.running.protocol as protocol
    import specbench.trainers.base as base

    clock = FakeClock()
    monkeypatch.setattr(protocol, "time", clock)
    original = base.Trainer.step
    seen = []  # (fake time, lr) at each step

    def timed_step(self):
        seen.append((clock.now, self.optimizer.param_groups[0]["lr"]))
        clock.now += STEP
        return original(self)

    monkeypatch.setattr(base.Trainer, "step", timed_step)
    record = run_job(job(budget_s=0.5, config={"lr": 0.02, "schedule": schedule}), evaluate=lambda m, d: 1.0)
    seen = seen[1:]  # the first step is the warm-up's, on a trainer that is then dropped
    assert record.status == "ok" and record.config["schedule"] == schedule and len(seen) == 64
    for k, (_, lr) in enumerate(seen):  # k steps of STEP s each spent before step k
        want = 0.02 if schedule == "constant" else 0.02 * 0.5 * (1 + math.cos(math.pi * k * STEP / 0.5))
        assert lr == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_an_unknown_schedule_is_a_usage_error():
    from specbench.core.errors import UsageError
    from specbench.running.protocol import build

    with pytest.raises(UsageError, match="setting schedule of Spectral must be one of 'constant', 'cosine', got 'linear'"):
        build(job(config={"schedule": "linear"}))[2]()


def test_memory_the_setup_and_the_training_keep_is_measured(monkeypatch):
    """A trainer whose setup keeps 32 MiB more and whose first step allocates and keeps 64 MiB more: the record's
    setup memory holds the 32 MiB and its training peak the 64 MiB (and not the setup's), each within what the
    spectral trainer itself needs on the oscillator (a few MiB)."""
    import numpy as np

    from specbench.trainers.spectral import Spectral

    MiB = 2 ** 20
    init, step = Spectral.__init__, Spectral._step

    def setup_keeps(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.setup_ballast = np.full(32 * MiB // 8, 1.0)  # written, so resident

    def step_keeps(self):
        if not hasattr(self, "step_ballast"):
            self.step_ballast = np.full(64 * MiB // 8, 1.0)
        return step(self)

    monkeypatch.setattr(Spectral, "__init__", setup_keeps)
    monkeypatch.setattr(Spectral, "_step", step_keeps)
    record = run_job(job(budget_s=0.3))
    assert record.status == "ok"
    assert 32 * MiB <= record.setup_memory_bytes < 48 * MiB
    assert 64 * MiB <= record.peak_memory_bytes < 80 * MiB


def test_record_is_valid_and_complete():
    record = run_job(job(budget_s=0.5))
    assert problems_of(record.to_dict()) == []
    assert record.status == "ok" and record.iterations > 0 and record.test_nmse is not None
    assert set(record.times_to_targets) == {"0.03", "0.01", "0.00333"}
    assert record.curve[0][0] == record.setup_seconds > 0 and record.curve[-1][1] == record.iterations
    assert record.config["E"] >= 1 and record.env["torch"]
    assert record.peak_memory_bytes is not None  # its value: test_memory_the_setup_and_the_training_keep_is_measured


def test_divergence_is_a_record_not_an_exception(monkeypatch):
    from specbench.trainers.spectral import Spectral

    monkeypatch.setattr(Spectral, "_step", lambda self: float("nan"))
    record = run_job(job(budget_s=2.0))
    assert record.status == "diverged" and "non-finite" in record.error
    assert problems_of(record.to_dict()) == []


def test_cadence_sees_a_crossing_at_most_a_tenth_of_its_time_late():
    """Evaluations every 10% of the time so far, at least `first` and at most `max_interval` apart: wherever a
    crossing falls after `first` / resolution, the next evaluation is within 10% of its time."""
    c, t, times = Cadence(first=0.01, resolution=0.1, max_interval=2.0), 0.0, [0.0]
    while t < 60:
        t = c.next_after(t)
        times.append(t)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] == pytest.approx(0.01) and max(gaps) == pytest.approx(2.0)
    assert all(b - a <= 0.1 * a + 1e-12 for a, b in zip(times, times[1:]) if a >= 0.1)
    assert all(b - a <= 0.01 + 1e-12 for a, b in zip(times, times[1:]) if a < 0.1)


def test_building_the_trainer_is_on_the_clock(monkeypatch):
    """A trainer whose construction sleeps 0.3 s (a precomputation that reads the data): its time to target is at
    least 0.3 s, though the metric is at the target from the start, and the record keeps the setup apart."""
    from specbench.trainers.spectral import Spectral

    original = Spectral.__init__

    def slow_init(self, *args, **kw):
        time.sleep(0.3)
        original(self, *args, **kw)

    monkeypatch.setattr(Spectral, "__init__", slow_init)
    record = run_job(job(budget_s=0.5), evaluate=lambda model, data: 0.0)
    assert record.status == "ok" and record.setup_seconds >= 0.3
    assert record.time_to_target_s >= 0.3 and record.curve[0][0] == record.setup_seconds
    assert record.train_seconds >= record.setup_seconds + 0.0 and record.iterations >= 1


def test_a_slow_machine_does_not_turn_a_healthy_run_into_a_diverged_one(monkeypatch):
    """The guard against a field too stiff to integrate counts the solver's work, not seconds: on a clock where
    every reading is 30 s after the last (a machine far busier than any), a healthy run stays 'ok' (it was
    'diverged: a rollout of the common metric took over 10 s' when the guard read the clock)."""
    now = [0.0]

    def slow_clock():
        now[0] += 30.0
        return now[0]

    monkeypatch.setattr(time, "perf_counter", slow_clock)
    record = run_job(job(trainer="backprop-rk4", budget_s=1.0))
    assert record.status == "ok", record.error
    assert record.test_nmse is not None


def test_a_field_too_stiff_to_integrate_ends_its_rollout_by_work(monkeypatch):
    """A field whose rollout needs more than MAX_EVALUATIONS evaluations raises RolloutTooSlow, whatever the
    clock says; with the bound lowered to 50 the oscillator's true field (about 500) trips it."""
    import numpy as np
    import torch

    from specbench.numerics import metric
    from specbench.numerics.metric import RolloutTooSlow, rollout
    from specbench.registries import get_system

    class Truth(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("anchor", torch.zeros(1))  # rollout reads the device from a buffer
            self.system = get_system("oscillator")

        def forward(self, t, x):
            return self.system.rhs_torch(x)

    x0, t = np.array([[1.0, 0.0]]), np.linspace(0.0, 10.0, 51)
    assert rollout(Truth(), x0, t).shape == (1, 51, 2)
    monkeypatch.setattr(metric, "MAX_EVALUATIONS", 50)
    with pytest.raises(RolloutTooSlow, match="over 50 evaluations"):
        rollout(Truth(), x0, t)


def test_atomic_write_round_trip_and_corrupt_records(tmp_path):
    record = run_job(job(budget_s=0.2))
    save(tmp_path / "runs" / "a.json", record)
    assert load(tmp_path / "runs" / "a.json") == record
    (tmp_path / "runs" / "b.json").write_text('{"schema": 1, "system": "osc')
    (tmp_path / "runs" / "c.json").write_text(json.dumps({**record.to_dict(), "status": "great"}))
    records, warnings = load_dir(tmp_path)
    assert len(records) == 1 and len(warnings) == 2
    assert any("b.json" in w for w in warnings) and any("c.json" in w and "status" in w for w in warnings)
    with pytest.raises(CorruptRecord, match="b.json"):
        load(tmp_path / "runs" / "b.json")
    assert not list((tmp_path / "runs").glob(".tmp-*"))


@pytest.mark.slow
def test_interrupted_sweep_resumes_and_loses_nothing(tmp_path):
    """Kill a sweep midway (its second run), rerun it: the same set of records, none corrupt, the finished one not
    redone."""
    args = ["run", "--systems", "oscillator", "--trainers", "spectral,spectral-2stage", "--budget", "0.2",
            "--threads", "1", "--out", tmp_path, "--no-report"]
    proc = start_cli(*args, start_new_session=True)
    runs = tmp_path / "runs"
    wait_for(lambda: record_paths(runs))  # killed between a write and its rename, it would leave none to skip
    os.killpg(proc.pid, signal.SIGKILL)  # the whole sweep, mid-run, with no chance to clean up
    proc.wait()
    first = {p.name: p.stat().st_mtime_ns for p in record_paths(runs)}
    assert len(first) == 1
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("skipped (record exists)") == 1
    records, warnings = load_dir(tmp_path)
    assert warnings == [] and len(records) == 2
    assert {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json") if p.name in first} == first
    assert {r.trainer for r in records} == {"spectral", "spectral-2stage"}


def test_unwritable_out_is_exit_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_exit_2(run_cli("run", "--systems", "oscillator", "--budget", "1", "--out", blocker / "x"), "cannot write")


def test_evaluation_memory_is_not_training_memory():
    """An evaluation that touches 200 MB must not show up in the run's peak (its training needs a few MB)."""
    import numpy as np

    def hungry(model, data):
        block = np.ones(25_000_000)  # 200 MB, written, so resident
        return float(block[0])

    record = run_job(job(budget_s=0.3), evaluate=hungry)
    assert record.peak_memory_bytes < 50 * 2 ** 20


def test_memory_an_evaluation_keeps_is_not_training_memory():
    """What an evaluation allocates and keeps (a first-use buffer: MKL's work space for a rollout's shapes) moves the
    baseline; before, the peak was reset after the evaluation but the baseline stayed, so it counted as training's."""
    import numpy as np

    calls, kept = [], []

    def keeper(model, data):
        calls.append(1)
        if len(calls) == 2:  # the run's first evaluation (the first call is the warm-up's)
            kept.append(np.ones(12_500_000))  # 100 MB, written and held to the end of the run
        return 1.0

    record = run_job(job(budget_s=0.3), evaluate=keeper)
    assert kept and record.peak_memory_bytes < 50 * 2 ** 20


def test_memory_training_keeps_is_counted():
    """The other side of the same line: memory the training steps allocate and keep is the run's."""
    import numpy as np

    from specbench.running.machine import PeakMemory

    memory = PeakMemory(cuda=False)
    memory.start()
    memory.pause()
    memory.resume()
    held = np.ones(12_500_000)  # 100 MB, as a training step that keeps it
    assert memory.peak() > 90 * 2 ** 20 and held[0] == 1.0


@pytest.mark.parametrize("trainer", ["spectral-2stage", "vf-node"])
def test_a_run_on_data_its_trainer_cannot_use_is_recorded_na_with_the_reason(monkeypatch, trainer, tmp_path):
    """Hidden states and inputs (the oscillator seen through its velocity, driven): a trainer that does not declare
    them has its record say "n/a" and why, and it loads; nothing trains and nothing crashes."""
    import numpy as np

    import specbench.running.protocol as protocol
    from specbench.core.records import Record
    from specbench.registries import get_system, get_trainer
    from specbench.systems.datasets import Trajectory, measured

    system = get_system("oscillator")
    t = np.linspace(0, 1, 5)
    runs = [Trajectory(t, np.zeros((5, 1)), t, np.zeros((5, 1)))]
    data = measured(system, runs, runs, outputs=[1])
    monkeypatch.setattr(protocol, "build", lambda job, cache_dir=None, datasets=None: (system, data, None))
    record = run_job(job(trainer=trainer))
    assert record.status == "n/a" and record.iterations == 0 and record.test_mse is None
    assert "cannot learn from hidden states or inputs" in record.error
    Record.from_dict(json.loads(json.dumps(record.to_dict())))
    with pytest.raises(Exception, match="cannot learn from"):
        get_trainer(trainer)(system, data)
