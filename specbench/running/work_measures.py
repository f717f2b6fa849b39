"""Work measures: what training costs and reaches counted in iterations, network evaluations and bytes, never in
seconds, so they are the same on every machine and a CI gate can compare them exactly, with no noise allowance.

For each system x trainer, one run on a fixed seed (dense regime, the job factory's settings, one thread,
deterministic algorithms) of `cap` iterations, with the common metric evaluated every `every` iterations:
- `nfe_per_iteration`: network evaluations per iteration over the first `iterations` (N) iterations;
- `metric_after_n`: the common metric after N iterations (float32 training: compared with `METRIC_RTOL`);
- `iterations_to_target`: the iterations to the first evaluation at or below 3x the system's target
  (`specbench.core.records.first_crossing` on the iteration-indexed curve: the protocol's rule) within the cap, kept
  by a run that diverges later; None when not reached;
- `held_bytes`: bytes of the tensors the trainer holds after N iterations (parameters, gradients, optimizer
  state, its own operators and data), each storage counted once: what the trainer keeps, as torch sees it.

`specbench work --out FILE` writes them with the settings that made them; `specbench work --check FILE` reruns
with the file's settings and exits 1 on any difference (`specbench.core.workfile.compare`: the file and its comparison
need no torch).
"""
from __future__ import annotations

import contextlib
import multiprocessing
import types
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict

import numpy as np
import torch

from specbench.core.defaults import limit_threads
from specbench.core.errors import Diverged
from specbench.core.records import TARGET_FACTORS, first_crossing
from specbench.core.workfile import COMMAND, METRIC_RTOL, SCHEMA, Settings
from specbench.numerics.metric import train_metric
from specbench.running.job import make_job
from specbench.running.machine import environment
from specbench.running.protocol import build


@contextlib.contextmanager
def pinned():
    """One thread and torch's deterministic algorithms, restored afterwards: bit-for-bit repeatable runs."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with limit_threads(1):
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def build_trainer(job):
    """The trainer and dataset of `job`, built as `protocol.run_job` builds them (no warm-up, no clocks)."""
    system, data, make = build(job)
    return make(), data


def held_bytes(trainer) -> int:
    """Bytes of every torch storage reachable from the trainer's attributes (tensors, modules, optimizer state,
    containers, plain objects), each storage once: shapes and dtypes decide it, not the allocator or the OS."""
    storages, seen = {}, set()

    def visit(obj):
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool, np.ndarray, type,
                                                              types.ModuleType, types.FunctionType)):
            return
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            if storage.nbytes():
                storages[storage.data_ptr()] = storage.nbytes()
            visit(obj.grad)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                visit(k)
                visit(v)
        elif isinstance(obj, (list, tuple, set, frozenset)):
            for v in obj:
                visit(v)
        elif hasattr(obj, "__dict__"):
            visit(vars(obj))

    visit(vars(trainer))
    return int(sum(storages.values()))


def work(system: str, trainer: str, settings: Settings = Settings()) -> dict:
    """The work measures of one (system, trainer): {measure: value or None}."""
    with pinned():
        job = make_job(system, trainer, settings.regime, settings.seed, budget_s=0.0, threads=1)
        tr, data = build_trainer(job)
        curve, at_n = [], {}
        for it in range(settings.cap + 1):
            if it % settings.every == 0 or it in (settings.iterations, settings.cap):
                curve.append([it, it, train_metric(tr.model, data)])  # rolls out a copy: the trainer's nfe stays
            if it == settings.iterations:
                at_n = {"nfe_per_iteration": tr.model.nfe / settings.iterations, "metric_after_n": curve[-1][2],
                        "held_bytes": held_bytes(tr)}
            if it == settings.cap:
                break
            try:
                tr.step()
            except Diverged:
                break  # what N did not see stays None; a crossing before the divergence stands, as in a sweep
    reached = first_crossing(curve, job.target * TARGET_FACTORS[0])
    metric = at_n.get("metric_after_n")
    return {"nfe_per_iteration": at_n.get("nfe_per_iteration"),
            "metric_after_n": metric if metric is not None and np.isfinite(metric) else None,
            "iterations_to_target": None if reached is None else int(reached),
            "held_bytes": at_n.get("held_bytes")}


class WorkIncomplete(Exception):
    """A work process died (killed, out of memory) before every pair was measured. `table` is the work file's content
    for the pairs that were, its `incomplete` naming the others ("system / trainer"): measured values are never lost
    with the pool that made them."""

    def __init__(self, message: str, table: dict):
        super().__init__(message)
        self.table = table


def work_table(pairs: list[tuple[str, str]], settings: Settings = Settings(), log=None, workers: int = 1) -> dict:
    """The work file's content for (system, trainer) `pairs`: settings, environment and values[system][trainer].

    `workers` > 1 shares the pairs among that many fresh processes (spawned, so none inherits this one's torch
    state; plugins reach them through SPECBENCH_PLUGINS). Each pair is a one-thread deterministic run, so the values
    are the same as one process's: only the wall time changes. Each pair is logged as it arrives. A process that dies
    takes the pool and every pair it had not finished with it; the pairs finished are kept, and WorkIncomplete
    carries them (`specbench work` writes them beside --out, marked incomplete, never over it)."""
    measured, broken = {}, None

    def keep(pair, value):
        measured[pair] = value
        if log:
            log(f"{pair[0]} / {pair[1]}: {value}")

    if workers > 1 and len(pairs) > 1:
        pool = ProcessPoolExecutor(min(workers, len(pairs)), mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = {pool.submit(work, s, t, settings): (s, t) for s, t in pairs}
            for future in as_completed(futures):
                try:
                    keep(futures[future], future.result())
                except BrokenProcessPool as exc:  # this pair died with the pool; the finished ones still arrive
                    broken = exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # an error or Ctrl-C runs no more pairs
    else:
        for s, t in pairs:
            keep((s, t), work(s, t, settings))
    values = {}
    for s, t in pairs:  # in the pairs' order, whatever order they arrived in
        if (s, t) in measured:
            values.setdefault(s, {})[t] = measured[(s, t)]
    table = {"schema": SCHEMA, "regenerate": COMMAND, "settings": asdict(settings), "metric_rtol": METRIC_RTOL,
             "env": environment("cpu", 1), "values": values}
    if broken is not None:
        missing = [f"{s} / {t}" for s, t in pairs if (s, t) not in measured]
        raise WorkIncomplete(f"a work process died ({type(broken).__name__}) before {len(missing)} of {len(pairs)} "
                             f"pairs were measured ({', '.join(missing)})", {**table, "incomplete": missing})
    return table
