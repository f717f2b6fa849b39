"""The executors: Dask runs the same jobs into the same records as one process at a time, and neither a worker
killed mid-run nor a Ctrl-C on the client costs a finished record."""
import logging
import os
import re
import signal
import threading

import dask
import pytest
from distributed import Client, LocalCluster

from specbench.core.records import load_dir, record_paths
from specbench.running import executors
from specbench.running.executors import Dask, Local
from specbench.running.protocol import Job
from specbench.running.sweeps import run_sweep
from tests.helpers import gone, one_line_exit_2, processes, run_cli, start_cli, wait_for

CADENCE = {"first": 0.05, "resolution": 1.0, "max_interval": 1.0}
TRAINERS = ("spectral", "backprop-rk4")  # a run costs about 4 s of CPU, nearly all its process's start: few of them
# What a run's outcome cannot change: the job, its settings, where it ran, the data and the untrained model's
# metric. Iteration counts, times and everything trained depend on how fast the machine was at that moment.
SAME = ("schema", "job_key", "system", "trainer", "regime", "seed", "status", "error", "config", "target_loss",
        "study")


def tiny_jobs(seeds=2, budget=0.05):
    return [Job(system="oscillator", trainer=t, regime="sparse", seed=s, budget_s=budget, target=1e-2, config={},
                threads=1, cadence=CADENCE) for s in range(seeds) for t in TRAINERS]


def deterministic(record):
    env = {k: v for k, v in record.env.items() if k != "workers"}  # the sweep's width, which differs by design
    return {**{k: getattr(record, k) for k in SAME}, "env": env, "targets": sorted(record.times_to_targets),
            "t_test": record.test_rollout["t"], "truth": record.test_rollout["truth"],
            "untrained": record.curve[0][1:]}  # its time is the setup's, on the clock


@pytest.mark.slow
def test_dask_writes_the_records_one_process_writes(tmp_path):
    jobs = tiny_jobs(seeds=1)  # two runs: both workers busy
    with Local() as local:
        here = run_sweep(jobs, tmp_path / "local", executor=local)
    with Dask(workers=2) as dask_executor:
        assert dask_executor.default_threads() == max(1, (os.cpu_count() or 1) // 2)
        there = run_sweep(jobs, tmp_path / "dask", executor=dask_executor)
    assert len(here) == len(there) == 2 and all(r.status == "ok" for r in here + there)
    assert [deterministic(r) for r in there] == [deterministic(r) for r in here]
    for a, b in zip(here, there):  # training is deterministic: where both evaluated one iteration, one metric
        common = {it: m for _, it, m in a.curve}
        assert all(m == pytest.approx(common[it], rel=1e-9) for _, it, m in b.curve if it in common)
    assert {r.env["workers"] for r in here} == {1} and {r.env["workers"] for r in there} == {2}
    written = [sorted(p.name for p in (tmp_path / d / "runs").iterdir()) for d in ("local", "dask")]
    assert written[0] == written[1] == sorted(j.name for j in jobs)  # records and nothing else, from the client


def _running_pids():
    """On a worker: the run processes its tasks have started and not yet seen end."""
    return [proc.pid for procs in executors._RUNNING.values() for proc in procs]


@pytest.mark.slow
def test_a_worker_killed_mid_run_costs_its_runs_not_the_sweep(tmp_path, capsys):
    """Kill the Dask worker process running a job. With no retries allowed, the jobs it held (the one running
    and any waiting behind it on that worker) are one-line `error` records and the sweep goes on; started again,
    the sweep reruns those jobs and only those."""
    jobs = tiny_jobs()[:3]  # two at once, one of them killed, and one started after the kill
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.CRITICAL)
    killed = {}

    def kill_a_busy_worker(client) -> bool:
        busy = {addr: pids for addr, pids in client.run(_running_pids).items() if pids}
        if busy:
            addr, pids = next(iter(busy.items()))
            killed.update(run=pids[0], worker=client.run(os.getpid, workers=[addr])[addr])
            os.kill(killed["worker"], signal.SIGKILL)
        return bool(busy)

    with cluster, Client(cluster) as client:
        killer = threading.Thread(target=wait_for, args=(lambda: kill_a_busy_worker(client), 60), daemon=True)
        killer.start()
        with Dask(scheduler=cluster.scheduler_address) as executor:
            records = run_sweep(jobs, tmp_path, executor=executor)
        killer.join()
    assert killed and gone(killed["run"])  # the run died with its worker: no orphan training on
    failed = [r for r in records if r.status != "ok"]
    assert 1 <= len(failed) < len(jobs)
    assert all(r.status == "error" and "KilledWorker" in r.error and "\n" not in r.error for r in failed)
    on_disk, warnings = load_dir(tmp_path)
    assert warnings == [] and sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(j.name for j in jobs)

    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").iterdir()}
    capsys.readouterr()
    again = run_sweep(jobs, tmp_path, executor=Local())
    assert capsys.readouterr().err.count("skipped (record exists)") == len(jobs) - len(failed)
    assert all(r.status == "ok" for r in again)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").iterdir()}
    rerun = {j.name for j, r in zip(jobs, records) if r.status != "ok"}
    assert {name for name in before if before[name] != after[name]} == rerun


@pytest.mark.slow
def test_ctrl_c_keeps_every_finished_record_and_leaves_no_process(tmp_path):
    proc = start_cli("run", "--systems", "oscillator", "--regimes", "sparse", "--trainers", ",".join(TRAINERS),
                     "--seeds", "2", "--budget", "0.05", "--threads", "1", "--workers", "2", "--out", tmp_path,
                     "--no-report", start_new_session=True,
                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    runs = tmp_path / "runs"
    wait_for(lambda: record_paths(runs))
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    finished = re.findall(r"^\[\d+/4\] ", stderr, flags=re.M)  # one line per record written
    records, warnings = load_dir(tmp_path)
    assert warnings == [] and 1 <= len(records) == len(finished) < 4
    left = sorted(p.name for p in runs.iterdir())
    assert len(left) == len(records) and not [n for n in left if n.startswith(".")]  # no .tmp-*.json left
    assert all(gone(pid) for pid in processes(session=proc.pid))


@pytest.mark.parametrize("args, needle", [
    (["--workers", "0"], "--workers must be positive"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not allowed with argument"),
    (["--scheduler", "nowhere"], "cannot reach the Dask scheduler at nowhere"),
])
def test_a_bad_executor_option_is_one_line_and_exit_2(tmp_path, args, needle):
    one_line_exit_2(run_cli("run", "--systems", "oscillator", "--budget", "0.1", "--out", tmp_path, *args), needle,
                    alone=True)
