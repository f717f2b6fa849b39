"""Executors: where a sweep's runs happen. Every run is a fresh Python process (`python -m specbench.worker`), so
its memory is its own and a crash or hang ends one run, not the sweep.

- `Local`: one run at a time, started from this process.

The record comes back to the client as a dict (`run_in_subprocess`), and the client alone writes it to
--out (`runner.run_jobs`), so resuming, atomic writes and the records themselves do not depend on where a run ran.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from specbench.protocol import Job, environment, targets_for
from specbench.results import SCHEMA, CorruptRecord, load

Task = tuple[Job, float]  # a job and its timeout in seconds
Deliver = Callable[[int, dict], None]  # called on the client with (index of the task, its record)


def failure_record(job: Job, status: str, error: str) -> dict:
    """The record of a run whose process failed or was killed before it could write its own."""
    return {"schema": SCHEMA, "system": job.system, "trainer": job.trainer, "regime": job.regime, "seed": job.seed,
            "status": status, "error": error, "config": {**job.config, "budget_s": job.budget_s, "noise": job.noise,
                                                          "device": job.device, "threads": job.threads},
            "target_loss": float(job.target), "time_to_target_s": None,
            "times_to_targets": {k: None for k in targets_for(job.target)}, "train_seconds": 0.0,
            "eval_seconds": 0.0, "iterations": 0, "final_train_loss": None, "test_mse": None, "test_nmse": None,
            "peak_memory_bytes": None, "study": job.study, "curve": [], "env": environment(job.device, job.threads)}


def run_in_subprocess(job: Job, timeout_s: float) -> dict:
    """Run one job in a fresh Python process and return its record. The process writes the record to a temporary
    file beside it, never to --out; a crash or the timeout is a failure record instead."""
    env = {**os.environ, "OMP_NUM_THREADS": str(job.threads), "MKL_NUM_THREADS": str(job.threads),
           "OPENBLAS_NUM_THREADS": str(job.threads)}
    with tempfile.TemporaryDirectory(prefix="specbench-run-") as tmp:
        job_path, out = Path(tmp) / "job.json", Path(tmp) / "record.json"
        job_path.write_text(json.dumps(job.to_dict()))
        proc = subprocess.Popen([sys.executable, "-m", "specbench.worker", str(job_path), str(out)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return failure_record(job, "timeout", f"run did not finish within {timeout_s:.0f} s")
        except BaseException:  # Ctrl-C: the unfinished run leaves no record and is rerun next time
            proc.kill()
            proc.wait()
            raise
        if proc.returncode == 0 and out.exists():
            try:
                return load(out)
            except CorruptRecord as exc:
                return failure_record(job, "error", str(exc)[:300])
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    why = lines[-1] if lines else f"worker exited with status {proc.returncode}"
    return failure_record(job, "error", why[:300])


class Local:
    """One run at a time, each in a fresh process started from this one."""

    def busy(self) -> int:
        return 1

    def run(self, tasks: list[Task], deliver: Deliver) -> None:
        for i, (job, timeout_s) in enumerate(tasks):
            record = run_in_subprocess(job, timeout_s)
            try:
                deliver(i, record)
            except KeyboardInterrupt:
                deliver(i, record)  # a finished run is never lost to a Ctrl-C that lands while it is written
                raise


class Progress:
    """One line per finished run, in the order runs finish, with the count done, an ETA and the workers in use;
    on a terminal those lines scroll above a tqdm bar, elsewhere (CI logs, pipes) they are plain lines."""

    def __init__(self, total: int, skipped: list[dict], stream=None):
        from tqdm import tqdm

        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.total, self.done, self.skipped = total, len(skipped), len(skipped)
        for record in skipped:
            self._line(f"    {_label(record)}: skipped (record exists)")
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

    def finished(self, record: dict, busy: int) -> None:
        self.done += 1
        busy = min(busy, self.total - self.done)
        ttt = record.get("time_to_target_s")
        summary = f"{record['status']}, {record['iterations']} it, metric " \
                  f"{record.get('final_train_loss') or float('nan'):.3g}, " \
                  f"to target {'%.2f s' % ttt if ttt is not None else 'not reached'}"
        if record.get("error"):
            summary += f" ({record['error']})"
        self._line(f"[{self.done}/{self.total}] {_label(record)}: {summary}; ETA {self.eta()}, "
                   f"{busy} worker{'s' * (busy != 1)} in use")
        self.bar.set_postfix_str(f"{busy} workers in use", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _label(record: dict) -> str:
    study = record.get("study")
    where = f"{study['name']} {study['variable']}={study['value']} / " if study else ""
    return f"{where}{record['system']} / {record['trainer']} / {record['regime']} / seed {record['seed']}"
