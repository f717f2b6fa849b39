"""The measurement loop, the same for every trainer (docs/design.md, "Measurement protocol").

The training clock starts when the data are in memory: it counts building the trainer (every precomputation that
reads the data: a least-squares fit and its factorisation, a first stage, a spline, shooting states), kept apart
as `setup_seconds` too, and every `step()`. The common metric is evaluated on a cadence in training time that
resolves a first crossing to 10% of its time (specbench.core.defaults.Cadence), with the clock paused; its cost goes to
`eval_seconds`. Time to target is the first crossing: the training time at the first evaluation at or below the
target. At each evaluation the protocol keeps the best model so far by the metric (the best checkpoint, a copy of
the weights, untimed like the evaluation), and the test errors are that model's: the practitioner's rule (early
stopping), so one model is judged once, for C1 and C2, and a run that diverges later keeps both. The sustained time
(the metric stays at or below the target from there to the end of the budget) is recorded beside it as the measure
of stability. Before every step the trainer is told how much of the budget is spent (`Trainer.anneal`), for its
learning-rate schedule.
Peak memory (specbench.running.machine) is the growth over the process's state after setup (peak RSS on CPU, the
allocator's peak on CUDA), so a job that asks for a fresh process (`Job.fresh_process`, the default) is meant to run
in one (see `specbench.running.executors`); what the trainer's setup itself keeps is `setup_memory_bytes`. Both are
measured after a warm-up of the run's own trainer (built, one step, then dropped, all untimed), so that one-off
allocations of its code path (and of its setup) do not enter them. The warm-up also makes the clock's figures
independent of what the process ran before, which is what lets a job that does not need its memory measured run in a
persistent worker (memory left unmeasured there). Where the run's wall time went is its record's `wall`
(specbench.core.records.WALL_PARTS).
"""
from __future__ import annotations

import gc
import time
from dataclasses import asdict, replace
from typing import Callable

import numpy as np
import torch

from specbench.core.defaults import Cadence
from specbench.core.errors import Diverged
from specbench.core.records import Record, first_crossing, job_config, new_record, sustained, target_key, targets_for
from specbench.numerics.gll import Mesh, representation_error
from specbench.numerics.metric import RolloutTooSlow, evaluation_limit, joined, output_fit, test_errors, train_metric
from specbench.registries import get_system, get_trainer
from specbench.running.job import Job
from specbench.running.machine import PeakMemory, _growth, environment
from specbench.systems import System
from specbench.systems.datasets import Dataset, Trajectory, dataset_key, integrate, make_dataset
from specbench.trainers.base import Trainer, cannot_use

ROLLOUT_STATES = 4
KEPT_DATASETS = 32  # datasets a persistent worker keeps in memory, the latest used (a few MB each at most)


def build(job: Job, cache_dir=None, datasets: dict | None = None) -> tuple[System, Dataset, Callable[[], Trainer]]:
    """The job's system and dataset, and how to build its trainer: the one way a run, its warm-up, the work
    measures and the benchmarks make them. `datasets` (a persistent worker's, dataset key -> Dataset) keeps each
    dataset in memory after its first run, and each run gets a copy of its arrays."""
    system = get_system(job.system, **job.system_params)
    if job.data:
        system = system.resized(job.regime, **job.data)
    if datasets is None:
        data = make_dataset(system, job.regime, job.noise, job.seed, cache_dir=cache_dir)
    else:
        key = dataset_key(system, job.regime, job.noise, job.seed)
        kept = datasets.pop(key, None) or make_dataset(system, job.regime, job.noise, job.seed, cache_dir=cache_dir)
        datasets[key] = kept  # the latest used last: the first is the one to forget
        while len(datasets) > KEPT_DATASETS:
            datasets.pop(next(iter(datasets)))
        data = kept.copy()
    return system, data, lambda: get_trainer(job.trainer)(system, data, job.config, job.seed, job.device)


def run_job(job: Job, evaluate=None, cache_dir=None, datasets: dict | None = None) -> Record:
    """Train one (system, trainer, regime, seed) for `job.budget_s` training seconds and return its record.

    `evaluate(model, data) -> float` replaces the common metric (`common_metric`) only in tests of the protocol
    itself; `datasets` is a persistent worker's memory of datasets (`build`). Memory is measured where
    `job.fresh_process` says the process is the run's own.
    A Diverged step ends the run early with status 'diverged', and so does a rollout of the metric that needs more
    than specbench.numerics.metric.MAX_EVALUATIONS evaluations of the field (a field too stiff to integrate: a bound in
    work, so the machine's load cannot decide it). What the run reached before it diverged stands: its first
    crossings, and its best checkpoint, whose test errors are recorded (a model whose test rollout is too stiff has
    none).
    """
    torch.set_num_threads(job.threads)
    metric_of = common_metric if evaluate is None else lambda trainer, data: evaluate(trainer.model, data)
    wall = {}  # seconds of wall time by part (specbench.core.records.WALL_PARTS); the worker adds the rest

    t0 = time.perf_counter()
    system, data, make_trainer = build(job, cache_dir, datasets)
    trainer_class = get_trainer(job.trainer)
    why = cannot_use(trainer_class, data)
    if why:  # a run it cannot do is recorded as such, not run on a part of the data
        return new_record(job, trainer_class.role, "n/a", environment(job.device, job.threads), why)
    cuda = torch.device(job.device).type == "cuda"
    memory = PeakMemory(cuda, measure=job.fresh_process)
    t1 = time.perf_counter()
    warm_up(job, data, make_trainer, metric_of)
    before_setup = memory.current()
    t2 = start_training = time.perf_counter()
    wall["data"], wall["warm_up"] = t1 - t0, t2 - t1
    trainer = make_trainer()  # on the clock: its precomputations read the data and are part of the method's cost
    if cuda:
        torch.cuda.synchronize()
    setup_s = time.perf_counter() - t2
    setup_memory = _growth(memory.current(), before_setup)

    cadence = Cadence(**job.cadence)
    targets = targets_for(job.target)
    curve, status, error = [], "ok", None
    train_s, eval_s, eval_wall = setup_s, 0.0, 0.0  # eval_wall: eval_s and the memory measure's pauses around it
    next_eval = 0.0
    metric = float("inf")
    best, best_state = None, None  # the best checkpoint: [seconds, iteration, metric], and the weights

    def evaluate_now() -> bool:
        """Append the metric to the curve, and keep the model if it is the best so far; False (and the run
        diverged) when its rollout was too slow."""
        nonlocal eval_s, eval_wall, metric, status, error, best, best_state
        paused = time.perf_counter()
        memory.pause()  # the metric's rollouts and the checkpoint are not training memory
        t0 = time.perf_counter()
        try:
            metric = metric_of(trainer, data)
            if np.isfinite(metric) and (best is None or metric < best[2]):
                best = [train_s, trainer.iteration, float(metric)]
                best_state = keep(trainer.model, best_state)
        except RolloutTooSlow as exc:
            status, error = "diverged", str(exc)
            return False
        finally:
            eval_s += time.perf_counter() - t0
            memory.resume()
            eval_wall += time.perf_counter() - paused
        curve.append([train_s, trainer.iteration, metric])
        return True

    t0 = time.perf_counter()
    memory.start()  # a collection and the baseline: the preparation for training, counted with the warm-up
    prepared = time.perf_counter() - t0
    wall["warm_up"] += prepared
    step_s, nfe = [], 0  # each step's duration; network evaluations in training steps (evaluation uses a copy)
    evaluate_now()
    while status == "ok" and train_s < job.budget_s:
        trainer.anneal(train_s / job.budget_s)
        nfe0 = trainer.model.nfe
        t0 = time.perf_counter()
        try:
            trainer.step()
        except Diverged as exc:
            status, error = "diverged", str(exc)
            break
        finally:
            if cuda:
                torch.cuda.synchronize()
            step_s.append(time.perf_counter() - t0)
            train_s += step_s[-1]
            nfe += trainer.model.nfe - nfe0
        if train_s >= next_eval:
            if not evaluate_now():
                break
            next_eval = cadence.next_after(train_s)
    if status == "ok" and curve[-1][1] != trainer.iteration:
        evaluate_now()  # the metric at the end of the budget
    peak = memory.peak()
    t0 = time.perf_counter()
    wall["training"], wall["evaluation"] = max(0.0, t0 - start_training - prepared - eval_wall), eval_wall
    # The model judged is the best checkpoint, kept whether or not the run diverged later (early stopping keeps it
    # too); a run that ended its budget without one (no finite metric) is judged on its final model.
    trained, test_mse, test_nmse, pred = status == "ok", None, None, None
    test_rmse = test_r2 = None
    if best_state is not None:
        trainer.model.load_state_dict(best_state)
    if trained or best_state is not None:
        try:
            test_mse, test_nmse, pred = test_errors(trainer.model, data)
            if data.needs:  # measurements: pred holds each test trajectory's outputs
                test_rmse, test_r2 = output_fit(joined(pred), joined([r.y for r in data.trajectories("test")]))
            else:
                test_rmse, test_r2 = output_fit(pred, data.test)
        except RolloutTooSlow as exc:
            status, error = "diverged", error or str(exc)
    wall["test_errors"] = time.perf_counter() - t0
    key = target_key(job.target)
    # First crossings (specbench.core.records) stand where the run diverged after them, as its best checkpoint does;
    # the sustained time needs the budget's end.
    reached = {k: first_crossing(curve, v) for k, v in targets.items()}
    kept = {k: sustained(curve, v) if trained else None for k, v in targets.items()}
    return new_record(
        job, type(trainer).role, status, environment(job.device, job.threads), error,
        config=job_config(job, trainer.config, system_params=system.params, cadence=asdict(cadence),
                          data=data_summary(system, data)),
        time_to_target_s=reached[key], times_to_targets=reached, sustained_s=kept[key], sustained_times=kept,
        best_checkpoint=dict(zip(("seconds", "iteration", "metric"), best)) if best else None, wall=wall,
        train_seconds=train_s, setup_seconds=setup_s, eval_seconds=eval_s, iterations=trainer.iteration,
        curve=curve,
        final_train_loss=metric if np.isfinite(metric) else None, test_mse=test_mse, test_nmse=test_nmse,
        test_rmse=test_rmse, test_r2=test_r2,
        peak_memory_bytes=peak, setup_memory_bytes=setup_memory,
        # the median step after the first (which pays one-off costs); network evaluations per training step
        step_seconds=float(np.median(step_s[1:] or step_s)) if step_s else None,
        nfe_per_iteration=nfe / len(step_s) if step_s else None,
        **measurements(job, system, data, trainer.config),
        test_rollout=first_test_rollout(data, pred))


def common_metric(trainer: Trainer, data: Dataset) -> float:
    """The common metric of the trainer's model on `data` (specbench.numerics.metric.train_metric): on hidden states
    each training trajectory simulated from the trainer's own estimate of its initial state (`Trainer.initial_states`;
    `data` may hold the first of its training trajectories only, as the warm-up's sliver does)."""
    initial = trainer.initial_states() if "hidden" in data.needs else None
    return train_metric(trainer.model, data, None if initial is None else initial[: len(data.trajectories("train"))])


def data_summary(system, data: Dataset) -> dict:
    """What the record says of its data: training trajectories, observations (a trajectory's most), span."""
    runs = data.trajectories("train")
    return {"n_train": len(runs), "n_times": max(len(r.t) for r in runs),
            "t_span": float(max(r.t[-1] - r.t[0] for r in runs)), "test_horizon": system.test_horizon}


def first_test_rollout(data: Dataset, pred) -> dict:
    """The first held-out trajectory, for the report's figure (at most 4 states, or outputs on measurements)."""
    first = data.trajectories("test")[0]
    mine = None if pred is None else pred[0]
    return {"t": first.t.tolist(), "truth": first.y[:, :ROLLOUT_STATES].tolist(),
            "pred": None if mine is None else mine[:, :ROLLOUT_STATES].tolist()}


def keep(model: torch.nn.Module, kept: dict | None) -> dict:
    """The model's weights and buffers as the best checkpoint: copied into `kept`, the checkpoint the run already
    holds, or into new tensors for its first one."""
    with torch.no_grad():
        if kept is None:
            return {k: v.detach().clone() for k, v in model.state_dict().items()}
        for k, v in model.state_dict().items():
            kept[k].copy_(v)
    return kept


def warm_up(job: Job, data: Dataset, make_trainer: Callable[[], Trainer], metric_of) -> None:
    """Build the run's own trainer on its own data, take one step, evaluate once on a sliver, then drop it: the
    one-off allocations of the run's code path at the run's shapes (kernels, thread pools, the autograd engine,
    MKL's work space for each matrix shape, solver buffers) happen here, so the memory measured after it is what
    the method holds and works in. Everything the trainer held is freed with it and, on CPU, handed back to the OS
    before the next baseline (`PeakMemory`), so nothing that grows with the problem is hidden. A sliver of the
    data was not enough: it takes other paths (fewer elements than one mini-batch) and other shapes."""
    if data.needs:  # measurements: the first two training trajectories' first 21 samples
        runs = [Trajectory(r.t[:21], r.y[:21], r.t_u, r.u) for r in data.trajectories("train")[:2]]
        sliver = replace(data, runs={**data.runs, "train": runs})
    else:
        n = min(len(data.t), 21)
        sliver = replace(data, t=data.t[:n], train=data.train[:2, :n], train_clean=data.train_clean[:2, :n])
    trainer = None
    try:
        trainer = make_trainer()
        trainer.step()  # one: a whole-trajectory adjoint step at 2001 times takes 46 s, and the run's own is next
        with evaluation_limit(2_000):  # the sliver takes tens of steps; a stiff field is the run's to report
            metric_of(trainer, sliver)
    except Exception:  # best effort: a warm-up that fails only leaves a constant in the measurement
        pass
    trainer = None
    gc.collect()
    if torch.device(job.device).type == "cuda":
        torch.cuda.empty_cache()


def measurements(job: Job, system, data, config: dict) -> dict:
    """The extra measurements a job asks for (`job.measure`), as record fields."""
    out = {}
    if "representation_error" in job.measure:
        # the clean trajectories on a grid 4x finer than the observations: the fit is judged between them too
        t_fine = np.linspace(data.t[0], data.t[-1], 4 * (len(data.t) - 1) + 1)
        truth = np.stack([integrate(system, x0, t_fine) for x0 in data.train_clean[:, 0]])
        mesh = Mesh(float(data.t[0]), float(data.t[-1]), int(config["E"]), int(config["p"]))
        out["representation_error"] = representation_error(mesh, data.t, data.train, t_fine, truth)
    return out
