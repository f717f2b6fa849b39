"""Runs one job in this (fresh) process: `python -m specbench.worker JOB.json OUT.json`. SPECBENCH_BEGAN is when
the executor started it, so the record's `wall.start` counts the process's start and imports."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from specbench.defaults import limit_threads
from specbench.job import Job
from specbench.plugins import load_plugin
from specbench.protocol import run_job
from specbench.records import write

BEGAN = "SPECBENCH_BEGAN"  # the environment variable that tells a fresh process when its executor started it


def _die_with_parent() -> None:
    """On Linux, ask the kernel to kill this run when the process that started it dies (a Dask worker killed
    mid-run), so no orphan keeps a core busy."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    parent = os.environ.get("SPECBENCH_PARENT_PID")
    if parent and os.getppid() != int(parent):  # the parent died before the request took hold
        os._exit(1)


def main(job_path: str, out_path: str) -> int:
    _die_with_parent()
    job = Job(**json.loads(Path(job_path).read_text()))
    for spec in job.plugins:  # the sweep's plugins, so this process's registry is the sweep's
        load_plugin(spec)
    limit_threads(job.threads)  # the environment said so at start-up; this holds pools made later too
    began = os.environ.get(BEGAN)
    start = time.time() - float(began) if began else None
    try:
        record = run_job(job)
    except KeyboardInterrupt:
        return 130  # an interrupted run writes nothing: the sweep reruns it
    if start is not None:
        record = dataclasses.replace(record, wall={"start": max(0.0, start), **(record.wall or {})})
    write(out_path, record)  # whole and on disk (fsync) before the process ends
    sys.stderr.flush()
    os._exit(0)  # no interpreter teardown: with torch loaded it took about a second of every run's wall time


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
