"""Runs one job in this (fresh) process: `python -m specbench.worker JOB.json OUT.json`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from specbench.job import Job
from specbench.protocol import run_job
from specbench.registry import load_plugin
from specbench.results import write_atomic


def main(job_path: str, out_path: str) -> int:
    job = Job(**json.loads(Path(job_path).read_text()))
    for spec in job.plugins:  # the sweep's plugins, so this process's registry is the sweep's
        load_plugin(spec)
    try:
        record = run_job(job)
    except KeyboardInterrupt:
        return 130  # an interrupted run writes nothing: the sweep reruns it
    write_atomic(out_path, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
