"""Executors: where a sweep's runs happen. A run is a worker process (`python -m specbench.running.worker`) started for
it alone, so its memory is its own and a crash or hang ends one run, not the sweep; or, where its job says it needs no
process of its own (`Job.fresh_process` false: tuning, whose memory no one reads), a persistent worker's, which has
torch and the trainers imported and the datasets in memory from the runs it served before. Both speak one protocol
(specbench.running.worker). A persistent worker runs one job at a time under the same timeout, and one that crashes,
hangs or fails a run is replaced: that run is one failure record, the next starts in a new worker. Either way the
executor adds the run's wall time (`wall.total`, and the rest of it not measured inside the run as `wall.write`).

- `Local`: one run at a time, started from this process (the default).
- `Dask`: Dask distributed, a LocalCluster of N single-threaded worker processes on this machine or the cluster
  behind an existing scheduler; a task starts the same run process on its worker and returns the record.

Either way the record comes back to the client as a dict (`run_in_subprocess`), and the client alone writes it to
--out (`sweeps.run_jobs`), so resuming, atomic writes and the records themselves do not depend on where a run ran.
"""
from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from typing import Callable

import psutil

from specbench.core.defaults import WALL_BACKSTOP, cores, thread_environment
from specbench.core.errors import UsageError
from specbench.core.io import to_json
from specbench.core.records import WALL_PARTS, CorruptRecord, Record, new_record, parse
from specbench.registries import TRAINERS, load_plugin
from specbench.running.job import Job
from specbench.running.machine import environment

Task = tuple[Job, float]  # a job and its time limit in seconds (specbench.core.defaults.run_limit; see Limit)
Deliver = Callable[[int, Record], None]  # called on the client with (index of the task, its record)


def failure_record(job: Job, status: str, error: str) -> Record:
    """The record of a run whose process failed or was killed before it could write its own."""
    for spec in job.plugins:  # its trainer's role, where a plugin's trainer failed on a worker that never loaded it
        load_plugin(spec)
    return new_record(job, TRAINERS[job.trainer].role, status, environment(job.device, job.threads), error)


class Limit:
    """A run's time limit, `seconds` of CPU per thread the job may use, counted on its process and its children
    from now (a busy machine stretches a run's wall time, not its CPU time: issue 36), with a wall-clock backstop
    WALL_BACKSTOP times `seconds` for a process that waits without computing (a deadlock, a sleep)."""

    POLL_S = 0.5  # how often the run's CPU time is read

    def __init__(self, pid: int, seconds: float, threads: int):
        self.seconds, self.cpu = seconds, seconds * max(1, threads)
        self.wall_end = time.monotonic() + WALL_BACKSTOP * seconds
        try:
            self.process = psutil.Process(pid)
        except psutil.Error:  # already gone: its end is read by the caller
            self.process = None
        self.used_before = self._used()

    def _used(self) -> float:
        try:
            t = self.process.cpu_times()
            return t.user + t.system + t.children_user + t.children_system
        except (psutil.Error, AttributeError):
            return 0.0

    def wait(self) -> float:
        """Seconds to wait for the run before asking `exceeded` again."""
        return max(0.0, min(self.POLL_S, self.wall_end - time.monotonic()))

    def exceeded(self) -> str | None:
        """Why the run is over its limit, or None."""
        if self._used() - self.used_before > self.cpu:
            return f"run did not finish within {self.seconds:.0f} s of CPU time"
        if time.monotonic() >= self.wall_end:
            return (f"run did not finish within {WALL_BACKSTOP * self.seconds:.0f} s of wall-clock time "
                    f"({WALL_BACKSTOP:g}x its limit of {self.seconds:.0f} s)")
        return None


_RUNNING: dict[str, set[subprocess.Popen]] = {}  # sweep id -> the run processes this process has started for it


def run_in_subprocess(job: Job, timeout_s: float, sweep: str = "") -> Record:
    """Run one job in another Python process, a fresh one or a persistent worker as `job.fresh_process` says, and
    return its record, with the wall time it took from here (`wall`); a crash or the timeout is a failure
    record instead."""
    began = time.time()
    record = (_run_fresh if job.fresh_process else _run_persistent)(job, timeout_s, sweep, began)
    return with_total(record, time.time() - began)


def with_total(record: Record, total: float) -> Record:
    """The record with its run's wall time on its worker (`total`), and what the run did not measure of it inside
    (the record written and read back, the process's exit) as `write`."""
    parts = {k: v for k, v in (record.wall or {}).items() if k in WALL_PARTS and k != "write"}
    if parts:
        parts["write"] = max(0.0, total - sum(parts.values()))
    return replace(record, wall={**{k: parts[k] for k in WALL_PARTS if k in parts}, "total": total})


def _run_fresh(job: Job, timeout_s: float, sweep: str, began: float) -> Record:
    """The job in a worker started for it alone (its memory is its own), killed once it has answered: its record
    has come back on its stdout, never through a file, so a run killed however it ends (its own process, or this
    one, a sweep or a Dask worker, by SIGKILL) leaves nothing behind to clean up, and no interpreter teardown (with
    torch loaded, about a second) is paid for."""
    worker = Worker(job.threads, tuple(job.plugins))
    running = _RUNNING.setdefault(sweep, set())
    running.add(worker.proc)
    try:
        worker.send(job, began)
        return worker.answer(job, timeout_s)[0]
    finally:  # Ctrl-C: the unfinished run leaves no record and is rerun next time
        running.discard(worker.proc)
        worker.close(kill=True)


class Worker:
    """A worker process (`python -m specbench.running.worker`) started from this process, for jobs of one thread count
    and set of plugins (its BLAS pools are sized at start-up): for one job (a fresh process) or many (persistent). Its
    stderr is read as it comes, the last lines kept for the error of a run it crashed in."""

    def __init__(self, threads: int, plugins: tuple):
        self.key = (threads, plugins)
        env = {**os.environ, **thread_environment(threads), "SPECBENCH_PARENT_PID": str(os.getpid())}
        self.proc = subprocess.Popen([sys.executable, "-m", "specbench.running.worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = collections.deque(maxlen=20)
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            if line.strip():
                self.stderr.append(line.decode(errors="replace").rstrip())

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, job: Job, began: float) -> bool:
        """Hand it the job; False where it has ended (then it never saw the job)."""
        try:
            self.proc.stdin.write((to_json({"job": job.to_dict(), "began": began}, indent=None) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except OSError:
            return False

    def answer(self, job: Job, timeout_s: float) -> tuple[Record, bool]:
        """The record of the job it was sent, and whether it can take another: within its limit (`timeout_s`, see
        Limit), or a `timeout` record; an `error` record where it crashed (its last line on stderr) or the run
        raised."""
        fd, line, limit = self.proc.stdout.fileno(), bytearray(), Limit(self.proc.pid, timeout_s, job.threads)
        while not line.endswith(b"\n"):
            if not select.select([fd], [], [], limit.wait())[0]:
                why = limit.exceeded()
                if why:
                    return failure_record(job, "timeout", why), False
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.proc.wait()
                self.reader.join(timeout=5)
                why = self.stderr[-1] if self.stderr else f"worker exited with status {self.proc.returncode}"
                return failure_record(job, "error", why[:300]), False
            line += chunk
        try:
            raw = json.loads(line)
            if set(raw) == {"error"}:
                return failure_record(job, "error", str(raw["error"])[:300]), False
            return Record.from_dict(raw), True
        except ValueError as exc:  # not JSON, or not a record (json's errors are ValueErrors too)
            return failure_record(job, "error", f"persistent worker's record: {exc}"[:300]), False

    def close(self, kill: bool = False) -> None:
        """End it: at the end of its input (it finishes what it is doing first), or killed."""
        if kill:
            self.proc.kill()
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)  # its stderr ends with it: no thread of it outlives the worker


_IDLE: list[Worker] = []  # persistent workers this process started that are waiting for a job
_IDLE_LOCK = threading.Lock()  # Dask may run tasks on several threads of one worker process


def _take_worker(job: Job) -> Worker:
    """An idle persistent worker for the job's threads and plugins, or a new one."""
    key = (job.threads, tuple(job.plugins))
    with _IDLE_LOCK:
        match = next((w for w in _IDLE if w.key == key), None)
        if match is not None:
            _IDLE.remove(match)
    if match is not None and match.alive():
        return match
    if match is not None:
        match.close()
    return Worker(*key)


def close_workers() -> int:
    """End the idle persistent workers this process started (an executor closing); how many."""
    with _IDLE_LOCK:
        idle = list(_IDLE)
        _IDLE.clear()
    for worker in idle:
        worker.close()
    return len(idle)


def _run_persistent(job: Job, timeout_s: float, sweep: str, began: float) -> Record:
    """The job in a persistent worker of this process, which goes back to the idle ones when it answered with a
    record and is replaced otherwise."""
    worker = _take_worker(job)
    if not worker.send(job, began):  # it ended while idle: the job goes to a new one
        worker.close()
        worker = Worker(*worker.key)
        worker.send(job, began)
    running = _RUNNING.setdefault(sweep, set())
    running.add(worker.proc)
    healthy = False
    try:
        record, healthy = worker.answer(job, timeout_s)
    finally:  # Ctrl-C: the unfinished run leaves no record and is rerun next time
        running.discard(worker.proc)
        if healthy:
            with _IDLE_LOCK:
                _IDLE.append(worker)
        else:
            worker.close(kill=True)
    return record


def stop_runs(sweep: str) -> int:
    """Kill the run processes this process started for `sweep` (the client was interrupted); how many."""
    procs = list(_RUNNING.get(sweep, ()))
    for proc in procs:
        proc.kill()
    return len(procs)


class Local:
    """One run at a time, each in a fresh process started from this one or in a persistent worker of this one."""

    def __enter__(self) -> Local:
        return self

    def __exit__(self, *exc) -> None:
        close_workers()

    def default_threads(self) -> int:
        return cores()

    def busy(self) -> int:
        return 1

    def slots(self) -> int:
        """Runs at once: one."""
        return 1

    def run(self, tasks: list[Task], deliver: Deliver) -> None:
        for i, (job, timeout_s) in enumerate(tasks):
            record = run_in_subprocess(job, timeout_s)
            try:
                deliver(i, record)
            except KeyboardInterrupt:
                deliver(i, record)  # a finished run is never lost to a Ctrl-C that lands while it is written
                raise


class Dask:
    """Runs on Dask distributed: a LocalCluster of `workers` single-threaded worker processes on this machine, or
    the cluster behind `scheduler` (an address such as tcp://host:8786). Each task starts the run process on its
    worker and returns the record; a worker that dies mid-run leaves its task to Dask, which retries it elsewhere
    up to `distributed.scheduler.allowed-failures` times, and then the run is an `error` record."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None):
        self.workers, self.scheduler = workers, scheduler
        self.client = self.cluster = None

    def __enter__(self) -> Dask:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UsageError("--workers and --scheduler need Dask: pip install 'dask[distributed]'") from None
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=10)
            except (OSError, TimeoutError, ValueError) as exc:
                raise UsageError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from None
        else:
            with _workers_ignore_ctrl_c():
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):  # a worker's persistent workers end with it anyway
            self.client.run(close_workers)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def default_threads(self) -> int:
        """The cores of a worker's machine shared among the worker threads there (at least 1)."""
        from distributed.comm import get_address_host

        nthreads, machine_cores = self.client.nthreads(), self.client.run(cores)
        per_host = Counter()
        for address, n in nthreads.items():
            per_host[get_address_host(address)] += n
        shares = [(machine_cores.get(a) or 1) // per_host[get_address_host(a)] for a in nthreads]
        return max(1, min(shares, default=1))

    def busy(self) -> int:
        return sum(1 for keys in self.client.processing().values() if keys)

    def slots(self) -> int:
        """Worker threads of the cluster: how many runs go at once."""
        return sum(self.client.nthreads().values())

    def run(self, tasks: list[Task], deliver: Deliver) -> None:
        from distributed import as_completed

        sweep = uuid.uuid4().hex  # names this sweep's tasks, and its run processes on the workers
        waiting = list(enumerate(tasks))[::-1]
        futures, in_hand = {}, None
        # Results travel to the client as each task ends, so a record in hand here outlives the worker it came from.
        results = as_completed(with_results=True, raise_errors=False)

        def submit():
            # No more tasks in flight than worker threads: Dask hands small groups of tasks to workers eagerly, so a
            # run could wait behind another while a worker idles, and a worker that died would take its queue along.
            slots = max(1, sum(self.client.nthreads().values())) - results.count()
            for _ in range(min(slots, len(waiting))):
                i, (job, timeout_s) = waiting.pop()
                future = self.client.submit(run_in_subprocess, job, timeout_s, sweep, pure=False,
                                            key=f"specbench-run-{sweep}-{i}")
                futures[future] = i
                results.add(future)

        try:
            submit()
            for in_hand in results:
                submit()  # the next run starts while this record is written
                self._deliver(in_hand, futures, tasks, deliver)
                in_hand = None
        except KeyboardInterrupt:
            self.client.cancel([f for f in futures if not f.done()])
            try:
                self.client.run(stop_runs, sweep)
            except Exception:  # noqa: BLE001  a worker going down too takes its runs with it
                pass
            for done in ([in_hand] if in_hand else []) + results.next_batch(block=False):
                if not done[0].cancelled():  # every record that reached the client is kept
                    self._deliver(done, futures, tasks, deliver)
            raise

    @staticmethod
    def _deliver(done: tuple, futures: dict, tasks: list[Task], deliver: Deliver) -> None:
        """Hand a finished task's record to `deliver`; a failed task (a worker that died, a task that raised) is
        an `error` record of its job."""
        from distributed import KilledWorker

        future, outcome = done
        i = futures[future]
        if future.status == "finished":
            return deliver(i, outcome)
        exc = outcome[1] if isinstance(outcome, tuple) else outcome  # (type, exception, traceback) when it erred
        if isinstance(exc, KilledWorker):
            why = "every Dask worker that ran this job died mid-run (KilledWorker)"
        else:
            why = f"Dask task failed: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
        deliver(i, failure_record(tasks[i][0], "error", why[:300]))


@contextlib.contextmanager
def _workers_ignore_ctrl_c():
    """Processes started inside inherit an ignored SIGINT: Ctrl-C in a terminal reaches the whole process group,
    and the client alone should stop a sweep (cancel its tasks, kill their runs, keep the records in hand)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def make_executor(workers: int | None = None, scheduler: str | None = None):
    """`Local` for one worker (the default), `Dask` for --workers N > 1 or --scheduler ADDRESS."""
    return Dask(workers, scheduler) if scheduler or (workers or 1) > 1 else Local()


class Progress:
    """One line per finished run, in the order runs finish, with the count done, an ETA and the workers in use;
    on a terminal those lines scroll above a tqdm bar, elsewhere (CI logs, pipes) they are plain lines."""

    def __init__(self, total: int, skipped: list[tuple[Record, str]], stream=None):
        from tqdm import tqdm

        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.total, self.done, self.skipped = total, len(skipped), len(skipped)
        for record, what in skipped:
            self._line(f"    {_label(record, what)}: skipped (record exists)")
        self.bar = tqdm(total=total, initial=self.done, unit="run", file=self.stream, disable=not self.tty,
                        smoothing=0, dynamic_ncols=True, leave=False)
        self.t0 = time.perf_counter()

    def _line(self, text: str) -> None:
        if self.tty:
            from tqdm import tqdm

            tqdm.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def eta(self) -> str:
        from tqdm import tqdm

        ran = self.done - self.skipped  # runs finished in this sweep set the pace; skipped ones took no time
        if not ran:
            return "?"
        return tqdm.format_interval((time.perf_counter() - self.t0) / ran * (self.total - self.done))

    def finished(self, record: Record, busy: int, what: str = "") -> None:
        """A line for the finished run `record`; `what` says what it ran beyond its cell and seed (a grid point)."""
        self.done += 1
        busy = min(busy, self.total - self.done)
        ttt = record.time_to_target_s
        summary = f"{record.status}, {record.iterations} it, metric " \
                  f"{record.final_train_loss or float('nan'):.3g}, " \
                  f"to target {'%.2f s' % ttt if ttt is not None else 'not reached'}"
        if record.error:
            summary += f" ({record.error})"
        self._line(f"[{self.done}/{self.total}] {_label(record, what)}: {summary}; ETA {self.eta()}, "
                   f"{busy} worker{'s' * (busy != 1)} in use")
        self.bar.set_postfix_str(f"{busy} workers in use", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _label(record: Record, what: str = "") -> str:
    study = record.study
    where = f"{study.name} {study.variable}={study.value} / " if study else ""
    return f"{where}{record.system} / {record.trainer} / {record.regime} / seed {record.seed}" + \
        (f" ({what})" if what else "")
