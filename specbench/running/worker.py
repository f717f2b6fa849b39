"""Runs jobs in this process, for an executor (specbench.running.executors): `python -m specbench.running.worker` reads
one request a line on stdin ({"job": {...}, "began": unix time}) and answers each with one line on stdout: the record as
JSON, or {"error": WHY} where the run raised (the executor then replaces this process). Whatever else a run prints
goes to stderr. It ends at the end of its input. An executor starts one for a job that needs a process of its own
(its memory is measured; the executor kills it once it has answered) or keeps one for many jobs that do not
(`Job.fresh_process` false: torch and the trainers imported once, the datasets kept in memory).

`began` is when the executor started the run, so the record's `wall.start` counts the process's start and imports,
or a persistent worker's wait for them where it was started for this run.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import os
import sys
import time
import traceback

from specbench.core.defaults import limit_threads
from specbench.core.io import to_json
from specbench.core.records import Record
from specbench.registries import load_plugin
from specbench.running.job import Job
from specbench.running.protocol import run_job

def _die_with_parent() -> None:
    """On Linux, ask the kernel to kill this worker when the process that started it dies (a Dask worker killed
    mid-run), so no orphan keeps a core busy."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    parent = os.environ.get("SPECBENCH_PARENT_PID")
    if parent and os.getppid() != int(parent):  # the parent died before the request took hold
        os._exit(1)


_limited: list[int] = []  # the thread count this process's pools are held to, once held


def run(job: Job, began: float | None, datasets: dict | None = None) -> Record:
    """The job's record, its `wall.start` the time since `began` (None: not known, left out)."""
    for spec in job.plugins:  # the sweep's plugins, so this process's registry is the sweep's (loaded once each)
        load_plugin(spec)
    if _limited != [job.threads]:  # once per process: it inspects every loaded library (a persistent worker's
        limit_threads(job.threads)  # jobs share their thread count); the environment said so at start-up, and
        _limited[:] = [job.threads]  # this holds pools made later too
    start = None if began is None else max(0.0, time.time() - began)
    record = run_job(job, datasets=datasets)
    if start is None:
        return record
    return dataclasses.replace(record, wall={"start": start, **(record.wall or {})})


def serve() -> int:
    """The worker's loop (see the module's docstring)."""
    _die_with_parent()
    answers = os.fdopen(os.dup(1), "w")  # the executor's channel; what a run prints goes to stderr instead
    os.dup2(2, 1)
    datasets: dict = {}  # dataset key -> Dataset, kept across runs (specbench.running.protocol.build)
    for line in sys.stdin:
        request = json.loads(line)
        job = Job(**request["job"])
        try:  # a job with a process of its own keeps no dataset: nothing else will run here
            answer = run(job, request["began"], None if job.fresh_process else datasets).to_dict()
        except KeyboardInterrupt:
            return 130
        except Exception as exc:  # noqa: BLE001  the run's failure is its record's, as a fresh process's would be
            traceback.print_exc()
            answer = {"error": traceback.format_exception_only(exc)[-1].strip()}
        # The run's objects go now; what outlives it (modules, caches, the datasets kept) is frozen out of the
        # collector, so the protocol's collections of later runs (before their warm-up and their training, off the
        # clock) look at their own objects only: a full collection of torch's took about 0.3 s, twice a run.
        if not job.fresh_process:  # (a fresh process is killed once it has answered)
            gc.collect()
            gc.freeze()
        answers.write(to_json(answer, indent=None) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(serve())
