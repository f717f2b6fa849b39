"""Sweeps: plan jobs from a preset, run each in a fresh process, keep every finished record.

A job is (system, trainer, regime, seed, config) in, one record out (`protocol.Job`). An executor
(`specbench.running.executors`: one process at a time here, or Dask) runs each job in a fresh process
(`python -m specbench.running.worker`), so a job's memory is measured cleanly and a crash or hang kills one run, not the
sweep; the record comes back here and only this process writes it. A sweep started again with the same --out
skips the runs it has (same job, same config) and reruns the rest; records are written atomically, so none is
ever half-written.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import socket
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from specbench.core.defaults import TIMEOUT_FACTOR, default_threads, run_limit
from specbench.core.errors import UsageError
from specbench.core.io import check_writable, to_json
from specbench.core.records import CorruptRecord, Record, load, write
from specbench.running.executors import Local, Progress, make_executor
from specbench.running.job import Job, make_job, warn_untuned
from specbench.running.presets import (REFERENCE_PRESET, SWEEP_PRESET, Preset, budget_s_for, load_or_default,
                                       budget_s_replaced)
from specbench.running.studies import STUDIES, Size, vocabulary


def plan(preset: Preset, device: str = "cpu", threads: int | None = None, target: float | None = None) -> list[Job]:
    """The preset's jobs, by system, regime, seed and trainer. A job's settings do not depend on its seed, so each
    (system, regime, trainer) is made once and copied per seed: 10,000 seeds plan in seconds, not minutes."""
    threads = threads or default_threads()
    jobs = []
    for s in preset.systems:
        for r in preset.regimes:
            made = [make_job(s, tr, r, 0, budget_s=budget_s_for(preset, s, r), preset=preset, target=target,
                             device=device, threads=threads) for tr in preset.trainers]
            jobs += [job.with_seed(seed) for seed in range(preset.seeds) for job in made]
    return jobs


def is_done(path: Path, job: Job) -> bool:
    """A finished record of this very job (the same job key: every setting that decides it), and not an `error`
    (those are retried); for a job that needs a process of its own, not a persistent worker's record, which has no
    memory measured."""
    try:
        record = load(path, vocabulary())
    except CorruptRecord:
        return False
    persistent = record.env.get("process") == "persistent"
    return record.job_key == job.key() and record.status != "error" and not (job.fresh_process and persistent)


def run_jobs(placed: list[tuple[Job, Path]], timeout_factor: float = TIMEOUT_FACTOR, executor=None,
             replace: bool = False, labels: list[str] | None = None) -> list[Record]:
    """Run each job whose record path does not already hold its finished record, on `executor` (default: one
    process at a time here); write each record there, atomically and from this process alone, as it comes back.
    Each output directory is locked for the sweep, and a record there of the same name but another job is
    refused unless `replace`. `labels`: what each run is beyond its system, trainer, regime and seed, for its
    progress line (tuning: the grid point). Returns the records in the order of `placed`."""
    with contextlib.ExitStack() as locks:
        for directory in sorted({path.parent for _, path in placed}):
            try:
                check_writable(directory)
            except OSError as exc:
                raise UsageError(f"cannot write to --out {directory.parent}: {exc.strerror}") from None
            locks.enter_context(sweep_lock(directory.parent))
        if not replace:
            refuse_other_jobs(placed)
        return _run_unlocked(placed, timeout_factor, executor or Local(), labels or [""] * len(placed))


LOCK_GRACE_S = 2.0  # how long a sweep waits for the lock of a sweep that is ending


@contextlib.contextmanager
def sweep_lock(directory: Path):
    """Hold DIR/.lock for the sweep (an advisory lock the kernel drops when this process ends, however it ends):
    a second sweep on the same --out is refused with the holder's pid and host. A sweep killed with its workers
    may hold it a moment longer (a worker being started, between its fork and its exec, shares the lock until it
    dies too), so the lock is tried for LOCK_GRACE_S before the sweep is refused."""
    path = directory / ".lock"
    fh = open(path, "a+")
    deadline = time.monotonic() + LOCK_GRACE_S
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            if time.monotonic() < deadline:
                time.sleep(0.1)
                continue
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise UsageError(f"another sweep ({holder}) is writing to {directory}; wait for it to end or use another "
                         "--out") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
    fh.flush()
    try:
        yield
    finally:
        fh.close()


def refuse_other_jobs(placed: list[tuple[Job, Path]]) -> None:
    """A record already at a job's path must be that job's (or unreadable, and then it is rerun): records of
    different settings are never mixed or silently replaced."""
    for job, path in placed:
        try:
            record = load(path, vocabulary())
        except (CorruptRecord, FileNotFoundError):
            continue
        if record.job_key != job.key():
            raise UsageError(f"{path.parent.parent} already holds {path.name} from another job "
                             f"({difference(record, job)}); use another --out, or --replace to overwrite it")


def difference(record: Record, job: Job) -> str:
    """The first setting in which `record` was made differently from `job`, as the option a user would change."""
    if record.job_key is None:
        return "made before records carried a job key"
    cfg = record.config
    for what, there, here in (("--budget", cfg.get("budget_s"), job.budget_s), ("--target", record.target_loss,
                              job.target), ("noise", cfg.get("noise"), job.noise),
                              ("--threads", cfg.get("threads"), job.threads),
                              ("--device", cfg.get("device"), job.device), ("study", record.study, job.study)):
        if there != here:
            return f"{what} {there} there, {here} here"
    for key, value in job.config.items():
        if cfg.get(key) != value:
            return f"setting {key} {cfg.get(key)!r} there, {value!r} here"
    return "other data, cadence or system parameters"


def _run_unlocked(placed: list[tuple[Job, Path]], timeout_factor: float, executor, labels: list[str]
                  ) -> list[Record]:
    records: list[Record | None] = [load(path, vocabulary()) if is_done(path, job) else None for job, path in placed]
    todo = [i for i, record in enumerate(records) if record is None]
    progress = Progress(len(placed), [(r, labels[i]) for i, r in enumerate(records) if r is not None])

    def deliver(k: int, record: Record) -> None:
        i = todo[k]
        # runs at once in this sweep: what a run shared the machine with
        record = dataclasses.replace(record, env={**record.env, "workers": executor.slots()})
        try:
            write(placed[i][1], record)
        except OSError:
            rescue(record)  # a full disk stops the sweep, but the run that just finished is not lost
            raise
        records[i] = record
        progress.finished(record, executor.busy(), labels[i])

    try:
        executor.run([(placed[i][0], run_limit(placed[i][0].budget_s, timeout_factor)) for i in todo],
                     deliver)
    finally:
        progress.close()
    return records


def unsaved_dir() -> Path:
    """Where a finished run's record goes when --out cannot take it."""
    return Path(tempfile.gettempdir()) / "specbench-unsaved"


def rescue(record: Record) -> None:
    """Keep a finished run's record that could not be written to --out: in the temporary directory if it can
    be written there, else as one JSON line on stderr. Either way the message says where."""
    where = unsaved_dir() / record.name
    try:
        write(where, record)
        print(f"specbench: the finished run's record is kept in {where}; copy it to its sweep's runs/ when there "
              "is room", file=sys.stderr)
    except OSError:
        print(f"specbench: the finished run's record, which could not be written anywhere: "
              f"{to_json(record.to_dict(), indent=None)}", file=sys.stderr)


def run_sweep(jobs: list[Job], out_dir: Path, timeout_factor: float = TIMEOUT_FACTOR, executor=None,
              replace: bool = False) -> list[Record]:
    """Run a sweep into out_dir/runs (one record per job, named by the job), resuming what it already has."""
    return run_jobs([(job, out_dir / "runs" / job.name) for job in jobs], timeout_factor, executor, replace)


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available to torch here")


def _finish(records: list[Record], out: Path) -> Path:
    bad = [r for r in records if not r.ok and r.status != "n/a"]
    na = len(records) - len(bad) - sum(r.ok for r in records)  # runs a trainer cannot do: not failures
    print(f"specbench: {len(records) - len(bad) - na} ok, {len(bad)} not ok" + (f", {na} n/a" if na else "") +
          f"; records in {out / 'runs'}", file=sys.stderr)
    return out


def run_study(args) -> Path:
    """`specbench study NAME`: plan the study's jobs and run them like any sweep; the directory of its records."""
    _check_device(args.device)
    out = args.out or Path("runs") / f"study-{args.name}"
    with make_executor(args.workers, args.scheduler) as executor:
        threads = args.threads or executor.default_threads()
        jobs = STUDIES[args.name].plan(Size(args.full, args.seeds, args.device, threads, args.budget_s))
        budget_s = f"{args.budget_s:g} s each (--budget)" if args.budget_s else \
            f"{jobs[0].budget_s:g} s each (the study's own; --budget to choose)"
        print(f"specbench: study {args.name}: {len(jobs)} runs, {sum(j.budget_s for j in jobs):g} s of training, "
              f"{budget_s}; targets, cadence and tuned settings of preset {REFERENCE_PRESET} -> {out}",
              file=sys.stderr)
        records = run_sweep(jobs, out, executor=executor, replace=args.replace)
    return _finish(records, out)


def run_from_args(args) -> Path:
    """`specbench run`: plan the preset's jobs, as the options narrow them, and run them; the records' directory."""
    preset, said = load_or_default(args.preset, SWEEP_PRESET)
    overrides = {k: getattr(args, k) for k in ("systems", "trainers", "regimes") if getattr(args, k)}
    if args.seeds:
        overrides["seeds"] = args.seeds
    if getattr(args, "data", None):  # the user's measurements are the one system, in its one regime
        params = {**preset.system_params, "file": {"path": str(args.data.resolve())}}
        overrides.update(systems=["file"], regimes=["dense"], system_params=params)
    if args.budget_s:
        said.append(budget_s_replaced(preset, args.budget_s))
        overrides["budget_s"] = args.budget_s
    preset = replace(preset, **overrides)
    _check_device(args.device)
    with make_executor(args.workers, args.scheduler) as executor:
        jobs = plan(preset, args.device, args.threads or executor.default_threads(), args.target)
        for line in said:  # said once the options and every job have passed their checks
            print(f"specbench run: {line}", file=sys.stderr)
        warn_untuned(jobs, preset)
        seconds = [j.budget_s for j in jobs] or [0.0]
        print(f"specbench: {len(jobs)} runs, {sum(seconds):g} s of training ({min(seconds):g}-{max(seconds):g} s "
              f"each) -> {args.out}", file=sys.stderr)
        records = run_sweep(jobs, args.out, preset.timeout_factor, executor, args.replace)
    return _finish(records, args.out)
