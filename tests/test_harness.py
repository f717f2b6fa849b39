"""The harness at its floor (issue 37): a record says where its run's wall time went and the report sums it; a run
that needs no process of its own runs in a persistent worker, where a crash or a hang costs that run alone; and
neither the worker nor the cheaper evaluation moves anything the clock or the metric decides."""
import copy
import importlib.util
import os
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torchdiffeq import odeint

import specbench.running.tuning as tune_module
from specbench.core import measures
from specbench.core.records import WALL_PARTS, Record, targets_for
from specbench.numerics import metric
from specbench.numerics.metric import ATOL, RTOL, float64_copy, rollout
from specbench.report.document import markdown_tables_only
from specbench.report.sections import wall_blocks
from specbench.running import executors
from specbench.running.executors import Dask, Local, close_workers, run_in_subprocess, with_total
from specbench.running.job import Job
from specbench.running.presets import load_preset
from specbench.running.protocol import KEPT_DATASETS, build, keep
from specbench.running.studies import vocabulary
from specbench.running.sweeps import is_done, plan
from tests.helpers import ROOT, make_record, processes, save, wait_for

EVERY_STEP = {"first": 1e-9, "resolution": 0.0, "max_interval": 1e-9}  # the metric after every step


def timed(record: dict, total: float, **parts) -> dict:
    """A hand-made record's JSON object with a wall-time breakdown: `parts`, the rest of `total` in `write`."""
    return {**record, "wall": {**parts, "write": total - sum(parts.values()), "total": total}}


def test_a_records_wall_time_is_validated_and_absent_from_records_made_before_it():
    old = make_record(as_dict=True)
    assert "wall" not in Record.from_dict(old, vocabulary()).to_dict()  # an old record writes back as it was
    parts = {"start": 2.0, "data": 0.1, "warm_up": 1.0, "training": 10.0, "evaluation": 3.0, "test_errors": 0.2}
    record = Record.from_dict(timed(old, 17.0, **parts), vocabulary())
    assert sum(record.wall[p] for p in WALL_PARTS) == pytest.approx(record.wall["total"])
    for bad in ({"total": -1.0}, {"training": "10"}, {"sleeping": 1.0}, {"total": float("nan")}):
        with pytest.raises(ValueError, match="'wall'"):
            Record.from_dict({**old, "wall": bad}, vocabulary())


def test_the_executor_adds_what_the_run_did_not_measure_inside_it():
    record = Record.from_dict(make_record(as_dict=True), vocabulary())
    inside = replace(record, wall={"start": 1.0, "data": 0.5, "training": 10.0})
    assert with_total(inside, 12.0).wall == {"start": 1.0, "data": 0.5, "training": 10.0, "write": 0.5,
                                             "total": 12.0}
    assert with_total(record, 30.0).wall == {"total": 30.0}  # a run that left no record of its own: its time only


def test_the_report_and_the_script_sum_each_sweeps_wall_time(tmp_path, capsys):
    """Two runs of 10 s budgets that took 15 s each on one worker: an overhead of 1.5x, with its parts."""
    parts = {"start": 2.0, "data": 0.1, "warm_up": 1.0, "training": 10.0, "evaluation": 1.5, "test_errors": 0.2}
    for seed in (0, 1):
        save(tmp_path / "runs" / f"oscillator__spectral__dense__seed{seed}.json",
             timed(make_record(seed=seed, as_dict=True), 15.0, **parts))
    save(tmp_path / "runs" / "oscillator__backprop-rk4__dense__seed0.json",  # lost: it timed out
         {**make_record(trainer="backprop-rk4", as_dict=True), "wall": {"total": 30.0}})
    text = markdown_tables_only(tmp_path, tmp_path / "out")
    row = next(line for line in text.splitlines() if line.startswith("| headline runs"))
    assert [c.strip() for c in row.strip("|").split("|")] == \
        ["headline runs", "3", "30", "60", "2x", "4", "0.2", "2", "20", "3", "0.4", "0.4", "30"]

    spec = importlib.util.spec_from_file_location("overhead", ROOT / "scripts" / "overhead.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(tmp_path), "--wall", "45", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "overhead: wall / (budgets / workers) = 3.00x" in out  # 45 s for 30 s of budgets on 2 workers
    assert "60.0 s over 3 runs = 2.00x" in out and "evaluation" in out


def test_records_without_a_breakdown_add_nothing_to_the_report():
    assert wall_blocks([make_record(), make_record(seed=1)]) == []
    w = measures.wall_time([make_record()])
    assert (w.timed, w.untimed, w.total, w.overhead) == (0, 1, 0, None)


def test_an_evaluation_gives_the_numbers_a_fresh_float64_copy_gave(monkeypatch):
    """The common metric's rollout against the rollout it replaced (a deep copy converted at every evaluation,
    under no_grad), as the weights change: in numpy (specbench.numerics.dopri5) the same numbers to round-off; through
    torch (a model the numpy solver does not take), from the kept float64 copy in inference mode, layer by layer, the
    same numbers bit for bit, the copy made once; and evaluating does not count as the model's evaluations."""
    job = Job(system="lotka-volterra", trainer="spectral", regime="sparse", seed=3, budget_s=1.0, target=1e-2,
              config={"model": {"activation": "softplus"}})
    _, data, make_trainer = build(job)
    trainer = make_trainer()
    x0, t = data.train[:, 0], data.t

    @torch.no_grad()
    def before(model):
        field = copy.deepcopy(model).double()
        return odeint(field, torch.as_tensor(x0, dtype=torch.float64), torch.as_tensor(t - t[0]),
                      method="dopri5", rtol=RTOL, atol=ATOL).transpose(0, 1).numpy()

    for _ in range(3):
        nfe = trainer.model.nfe
        np.testing.assert_allclose(rollout(trainer.model, x0, t), before(trainer.model), rtol=1e-9, atol=1e-12)
        assert trainer.model.nfe == nfe
        trainer.step()
    monkeypatch.setattr(metric, "numpy_field", lambda model: None)
    copy64 = float64_copy(trainer.model)
    for _ in range(3):
        nfe = trainer.model.nfe
        assert np.array_equal(rollout(trainer.model, x0, t), before(trainer.model))
        assert trainer.model.nfe == nfe
        trainer.step()
    assert float64_copy(trainer.model) is copy64


def test_the_best_checkpoint_is_a_copy_its_tensors_reused():
    model = torch.nn.Linear(2, 2)
    kept = keep(model, None)
    tensors = {k: v for k, v in kept.items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not torch.equal(kept["weight"], model.weight)  # a copy, not the live weights
    again = keep(model, kept)
    assert again is kept and all(again[k] is tensors[k] for k in kept) and torch.equal(kept["weight"], model.weight)


def test_a_persistent_worker_keeps_each_dataset_and_gives_each_run_its_own_arrays():
    job = Job(system="oscillator", trainer="spectral", regime="sparse", seed=0, budget_s=1.0, target=1e-2, config={})
    memory = {}
    _, first, _ = build(job, datasets=memory)
    first.train[:] = 0.0  # a run that writes into its data
    _, second, _ = build(job, datasets=memory)
    _, fresh, _ = build(job)
    assert len(memory) == 1 and np.array_equal(second.train, fresh.train) and second.train is not first.train
    for seed in range(1, KEPT_DATASETS + 2):
        build(replace(job, seed=seed), datasets=memory)
    assert len(memory) == KEPT_DATASETS


def test_tuning_runs_in_persistent_workers_a_sweep_in_fresh_ones_and_the_job_key_is_the_same(monkeypatch, tmp_path):
    placed = []
    monkeypatch.setattr(tune_module, "run_jobs", lambda jobs, **kw: placed.extend(j for j, _ in jobs) or
                        [Record.from_dict(make_record(trainer="vf-node", role="rival", as_dict=True))] * len(jobs))
    tune_module.tune([tune_module.Cell("oscillator", "dense", 9.0)], ["vf-node"], tmp_path, 1, tmp_path / "t.toml")
    assert placed and not any(j.fresh_process for j in placed)
    sweep = plan(load_preset("quick"), threads=1)
    assert sweep and all(j.fresh_process for j in sweep)

    job = sweep[0]
    persistent = replace(job, fresh_process=False)
    assert persistent.key() == job.key()  # where it ran does not decide its outcome, so resume finds it either way
    record = Record.from_dict(make_record(system=job.system, trainer=job.trainer, as_dict=True), vocabulary())
    for process, fresh_done in (("fresh", True), ("persistent", False)):
        save(tmp_path / "r.json", replace(record, job_key=job.key(), env={**record.env, "process": process}))
        # a persistent worker's record has no memory: it does not stand for a job that needs its process's own
        assert (is_done(tmp_path / "r.json", job), is_done(tmp_path / "r.json", persistent)) == (fresh_done, True)


def crossings(record: Record, last: int) -> dict:
    """The iteration of the first evaluation at or below each of the record's targets, up to iteration `last`
    (None: not by then)."""
    return {key: next((it for _, it, m in record.curve if m is not None and m <= value and it <= last), None)
            for key, value in targets_for(record.target_loss).items()}


@pytest.mark.slow
def test_time_to_target_does_not_depend_on_whether_the_process_was_fresh_or_persistent():
    """One deterministic run (spectral, full batch), evaluated after every step: in a fresh process, and in a
    persistent worker that has run another trainer on another system first. The same iterates (the same metric at
    every iteration both reached) and the same first crossings, by iteration: seconds differ with the machine's
    load, what the clock times does not. Only the fresh process measures memory."""
    job = Job(system="oscillator", trainer="spectral", regime="sparse", seed=0, budget_s=0.3, target=0.5, config={},
              cadence=EVERY_STEP)
    other = Job(system="lotka-volterra", trainer="vf-node", regime="sparse", seed=1, budget_s=0.1, target=1e-2,
                config={}, fresh_process=False)
    try:
        fresh = run_in_subprocess(job, 600)
        assert run_in_subprocess(other, 600).ok
        persistent = run_in_subprocess(replace(job, fresh_process=False), 600)
    finally:
        close_workers()
    assert fresh.ok and persistent.ok and fresh.job_key == persistent.job_key
    assert (fresh.env["process"], persistent.env["process"]) == ("fresh", "persistent")
    assert fresh.peak_memory_bytes is not None and persistent.peak_memory_bytes is None
    last = min(fresh.iterations, persistent.iterations)  # how far both got depends on the machine's load
    first = crossings(fresh, last)
    assert first["0.5"] is not None and crossings(persistent, last) == first
    at = {it: m for _, it, m in fresh.curve}
    common = [(it, m) for _, it, m in persistent.curve if it in at]
    assert len(common) > first["0.5"] and all(m == pytest.approx(at[it], rel=1e-9) for it, m in common)
    for record in (fresh, persistent):  # each part of the run's wall time, summing to its total
        assert set(record.wall) == {*WALL_PARTS, "total"}
        assert sum(record.wall[p] for p in WALL_PARTS) == pytest.approx(record.wall["total"])
        assert record.wall["training"] >= record.train_seconds and record.wall["evaluation"] >= record.eval_seconds


FAULTY = '''
    """vf-node, failing on purpose on seeds 1 to 3 (in its warm-up step or its first training step); on seed 4
    waiting 1 s without computing (as a run does on a machine with no core free) in its first step, which it takes
    twice (the warm-up's and training's), on seed 5 forever."""
    import os
    import sys
    import time

    from specbench.trainers.vf_node import VFNode


    class Faulty(VFNode):
        def _step(self):
            if self.seed == 1:
                print("faulty: crashed on purpose", file=sys.stderr, flush=True)
                os._exit(3)
            if self.seed == 2:
                while True:  # a hang that computes
                    pass
            if self.seed == 4 and not self.iteration:
                time.sleep(1)
            if self.seed == 5:
                time.sleep(3600)
            if self.seed == 3 and self.iteration:
                raise ValueError("broken on purpose")
            return super()._step()


    TRAINERS = {"faulty": Faulty}
'''


def faulty_jobs(tmp_path: Path, seeds: list[int]) -> list[Job]:
    plugin = tmp_path / "faulty_plugin.py"
    plugin.write_text(textwrap.dedent(FAULTY))
    return [Job(system="oscillator", trainer="faulty", regime="sparse", seed=seed, budget_s=0.1, target=1e-2,
                config={}, plugins=[str(plugin)], fresh_process=False) for seed in seeds]


def _serving(marker: str) -> list[int]:
    """Persistent workers started with `marker` in their environment and still alive."""
    return processes(b"specbench.running.worker", environ=marker.encode())


@pytest.mark.slow
def test_a_persistent_worker_that_crashes_hangs_or_raises_costs_that_run_and_the_sweep_goes_on(tmp_path,
                                                                                              monkeypatch):
    """Runs on one persistent worker at a time: a crash, a hang (past its CPU limit), an exception and a wait past
    the wall-clock backstop are each one failure record naming why, and each replaces the worker; the runs after
    them are ok, and the executor's end leaves no worker behind. A run that waits 2 s (a busy machine) with a limit
    of 1.5 s is ok: the limit counts CPU time (issue 36). The limits are a second or two: what a failure costs is
    the same at any limit, and the hangs' limits are what this test waits for."""
    marker = f"specbench-test-{os.getpid()}-{time.time()}"
    monkeypatch.setenv("SPECBENCH_TEST_MARKER", marker)
    jobs = faulty_jobs(tmp_path, [0, 1, 0, 2, 3, 0, 4, 5, 0])
    timeouts = [600, 600, 600, 1, 600, 600, 1.5, 1, 600]  # the hangs run in a worker already started
    records, pids = {}, []

    def deliver(i, record):
        records[i] = record
        pids.append(sorted(_serving(marker)))

    with Local() as local:
        local.run(list(zip(jobs, timeouts)), deliver)
    statuses = [records[i].status for i in range(len(jobs))]
    assert statuses == ["ok", "error", "ok", "timeout", "error", "ok", "ok", "timeout", "ok"], \
        [records[i].error for i in records]
    assert "crashed on purpose" in records[1].error
    assert "run did not finish within" in records[3].error  # 1 s of CPU, or 4 s of wall time on a busy machine
    assert "within 4 s of wall-clock time" in records[7].error and records[6].wall["total"] > timeouts[6]
    assert records[4].error == "ValueError: broken on purpose"
    assert all(records[i].wall == {"total": records[i].wall["total"]} for i in (1, 3, 4, 7))
    assert all(r.env["process"] == "persistent" for r in records.values())
    # one worker after each run that went well, none after a failure (it is killed), and a new one after each
    assert [len(p) for p in pids] == [1, 0, 1, 0, 0, 1, 1, 0, 1] and pids[6] == pids[5]
    assert len({pids[0][0], pids[2][0], pids[5][0], pids[8][0]}) == 4
    assert _serving(marker) == [] and executors._IDLE == []


@pytest.mark.slow
def test_persistent_runs_on_dask_and_a_crash_there_costs_one_run(tmp_path, monkeypatch):
    marker = f"specbench-test-{os.getpid()}-{time.time()}"
    monkeypatch.setenv("SPECBENCH_TEST_MARKER", marker)
    jobs = faulty_jobs(tmp_path, [0, 1, 6, 7])
    records = {}
    with Dask(workers=2) as dask_executor:
        dask_executor.run([(job, 600) for job in jobs], records.__setitem__)
        assert _serving(marker)  # each Dask worker keeps its own
    assert [records[i].status for i in range(4)] == ["ok", "error", "ok", "ok"]
    assert "crashed on purpose" in records[1].error
    assert wait_for(lambda: _serving(marker) == [], timeout=30)
