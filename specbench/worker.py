"""Runs one job in this (fresh) process: `python -m specbench.worker < JOB.json > RECORD.json` (the job as JSON on
stdin, its record as JSON on stdout; anything else the run prints to stdout is dropped, its stderr is the parent's to
read)."""
from __future__ import annotations

import json
import os
import sys

from specbench.defaults import limit_threads
from specbench.io import to_json
from specbench.job import Job
from specbench.plugins import load_plugin
from specbench.protocol import run_job


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


def main() -> int:
    _die_with_parent()
    record_out = os.fdopen(os.dup(1), "w")  # the record's channel to the parent
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # whatever else the run prints to stdout goes nowhere
    job = Job(**json.loads(sys.stdin.read()))
    for spec in job.plugins:  # the sweep's plugins, so this process's registry is the sweep's
        load_plugin(spec)
    limit_threads(job.threads)  # the environment said so at start-up; this holds pools made later too
    try:
        record = run_job(job)
    except KeyboardInterrupt:
        return 130  # an interrupted run writes nothing: the sweep reruns it
    record_out.write(to_json(record.to_dict()))
    record_out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
