"""Sweeps: plan jobs from a preset, run each in a fresh process, keep every finished record.

A job is (system, trainer, regime, seed, config) in, one record out (`protocol.Job`). The executor here runs one
fresh process per job on this machine (`python -m specbench.worker`), so a job's memory is measured cleanly and
a crash or hang kills one run, not the sweep. A sweep started again with the same --out skips the runs it has
(same job, same config) and reruns the rest; records are written atomically, so none is ever half-written.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from specbench.errors import UsageError
from specbench.job import Job, make_job, targets_for, warn_untuned
from specbench.presets import Preset, load_preset
from specbench.protocol import environment
from specbench.results import SCHEMA, CorruptRecord, load, write_atomic

SETUP_ALLOWANCE_S = 120.0  # process start, data generation and the final test rollouts, on top of the budget


def plan(preset: Preset, device: str = "cpu", threads: int | None = None, target: float | None = None) -> list[Job]:
    threads = threads or os.cpu_count() or 1
    return [make_job(s, tr, r, seed, budget_s=preset.budget_s, preset=preset, target=target, device=device,
                     threads=threads)
            for s in preset.systems for r in preset.regimes for seed in range(preset.seeds) for tr in preset.trainers]


def is_done(path: Path, job: Job) -> bool:
    """A finished record of this very job (the same job key: every setting that decides it), and not an `error`
    (those are retried)."""
    try:
        record = load(path)
    except CorruptRecord:
        return False
    return record.get("job_key") == job.key() and record["status"] != "error"


def failure_record(job: Job, status: str, error: str) -> dict:
    """The record of a run whose process failed or was killed before it could write its own."""
    return {"schema": SCHEMA, "job_key": job.key(), "system": job.system, "trainer": job.trainer, "regime": job.regime, "seed": job.seed,
            "status": status, "error": error, "config": {**job.config, "budget_s": job.budget_s, "noise": job.noise,
                                                          "device": job.device, "threads": job.threads},
            "target_loss": float(job.target), "time_to_target_s": None,
            "times_to_targets": {k: None for k in targets_for(job.target)}, "train_seconds": 0.0,
            "eval_seconds": 0.0, "iterations": 0, "final_train_loss": None, "test_mse": None, "test_nmse": None,
            "peak_memory_bytes": None, "study": job.study, "curve": [], "env": environment(job.device, job.threads)}


def run_in_process(job: Job, out: Path, timeout_s: float) -> dict:
    """Run one job in a fresh Python process; return its record (also written to `out`)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(job.threads), "MKL_NUM_THREADS": str(job.threads),
           "OPENBLAS_NUM_THREADS": str(job.threads)}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(job.to_dict(), fh)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "specbench.worker", fh.name, str(out)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            record = failure_record(job, "timeout", f"run did not finish within {timeout_s:.0f} s")
            write_atomic(out, record)
            return record
        except KeyboardInterrupt:
            proc.kill()  # the unfinished run leaves no record and is rerun next time
            raise
    finally:
        os.unlink(fh.name)
    if proc.returncode == 0 and out.exists():
        return load(out)
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    why = lines[-1] if lines else f"worker exited with status {proc.returncode}"
    record = failure_record(job, "error", why[:300])
    write_atomic(out, record)
    return record


class Progress:
    """One updating line on a terminal; a plain line per run otherwise (CI logs, pipes)."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.stream, self.tty = total, stream, stream.isatty()
        self.durations: list[float] = []

    def eta(self, remaining: int, budget: float) -> str:
        per = sum(self.durations) / len(self.durations) if self.durations else budget + 10
        s = int(per * remaining)
        return f"{s // 60}m{s % 60:02d}s"

    def start(self, i: int, job: Job):
        study = f"{job.study['name']} {job.study['variable']}={job.study['value']} / " if job.study else ""
        msg = f"[{i + 1}/{self.total}] {study}{job.system} / {job.trainer} / {job.regime} / seed {job.seed}" \
              f" (ETA {self.eta(self.total - i, job.budget_s)})"
        if self.tty:
            self.stream.write("\r\033[K" + msg)
        else:
            self.stream.write(msg + "\n")
        self.stream.flush()

    def done(self, record: dict, seconds: float, skipped: bool = False):
        if not skipped:
            self.durations.append(seconds)
        ttt = record.get("time_to_target_s")
        summary = "skipped (record exists)" if skipped else \
            f"{record['status']}, {record['iterations']} it, metric {record.get('final_train_loss') or float('nan'):.3g}, " \
            f"to target {'%.2f s' % ttt if ttt is not None else 'not reached'}"
        if record.get("error"):
            summary += f" ({record['error']})"
        self.stream.write(("\r\033[K" if self.tty else "") + f"    {record['system']} / {record['trainer']}: "
                          f"{summary}\n")
        self.stream.flush()


def run_sweep(jobs: list[Job], out_dir: Path, timeout_factor: float = 3.0) -> list[dict]:
    runs = out_dir / "runs"
    try:
        runs.mkdir(parents=True, exist_ok=True)
        probe = runs / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to --out {out_dir}: {exc.strerror}") from None
    progress = Progress(len(jobs))
    records = []
    for i, job in enumerate(jobs):
        path = runs / job.name
        if is_done(path, job):
            record = load(path)
            progress.done(record, 0.0, skipped=True)
        else:
            progress.start(i, job)
            t0 = time.perf_counter()
            record = run_in_process(job, path, timeout_factor * job.budget_s + SETUP_ALLOWANCE_S)
            progress.done(record, time.perf_counter() - t0)
        records.append(record)
    return records


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available to torch here")


def _finish(records: list[dict], out: Path, no_report: bool) -> int:
    bad = [r for r in records if r["status"] != "ok"]
    print(f"specbench: {len(records) - len(bad)} ok, {len(bad)} not ok; records in {out / 'runs'}", file=sys.stderr)
    if not no_report:
        from specbench.report import write_report

        md, page = write_report(out, out)
        print(f"specbench: report {md} and {page}", file=sys.stderr)
    return 0


def run_study(args) -> int:
    """`specbench study NAME`: plan the study's jobs and run them like any sweep."""
    from specbench.studies import STUDIES, Size

    _check_device(args.device)
    out = args.out or Path("runs") / f"study-{args.name}"
    jobs = STUDIES[args.name].plan(Size(args.full, args.seeds, args.device, args.threads or os.cpu_count() or 1))
    print(f"specbench: study {args.name}: {len(jobs)} runs, {sum(j.budget_s for j in jobs):g} s of training "
          f"-> {out}", file=sys.stderr)
    return _finish(run_sweep(jobs, out), out, args.no_report)


def run_from_args(args) -> int:
    preset = load_preset(args.preset)
    overrides = {k: getattr(args, k) for k in ("systems", "trainers", "regimes") if getattr(args, k)}
    if args.seeds:
        overrides["seeds"] = args.seeds
    if args.budget:
        overrides["budget_s"] = args.budget
    preset = replace(preset, **overrides)
    _check_device(args.device)
    jobs = plan(preset, args.device, args.threads, args.target)
    warn_untuned(jobs, preset)
    print(f"specbench: {len(jobs)} runs of up to {preset.budget_s:g} s training each -> {args.out}", file=sys.stderr)
    return _finish(run_sweep(jobs, args.out, preset.timeout_factor), args.out, args.no_report)
