"""Scaling studies: how cost and error grow, which one operating point cannot show (claims C3, C4, C5 and the
paper's low-data claim).

A study is a list of ordinary jobs with one setting swept; each record is an ordinary run record plus
`study = {"name", "variable", "value", "series"}`, so a sweep, the resume logic and the report read it like any
other. Each study has a default size that runs in well under 15 minutes on a 2-core machine and a `full` size.

- `horizon`: Lotka-Volterra trajectories from 101 to 2001 observation times (5001 in full) at the same sampling
  interval, every trainer, three seeds: per-step time, network evaluations per step (the sequential depth of an
  iteration) and peak memory. The solver baselines run twice: with their tuned segments, and on whole
  trajectories (one batch of every trajectory from its first state), which is what the paper's memory argument
  is about.
- `state-size`: `network` with N = 4 to 128 oscillators (256 in full), every trainer, tuned settings.
- `order`: the oscillator's dense data, spectral trainer: p from 1 to 20 at E = 4 (noiseless and 1% noise), E from
  1 to 16 at p = 6; each record carries `representation_error` of the least-squares fit (C5).
- `regimes`: dense, sparse and irregular sampling (each training trajectory at its own random times: data that
  arrive at arbitrary times, the original neural-ODE paper's argument) at noise 0, 1% and 5%, for oscillator and
  Lotka-Volterra with the headline trainers (every system and trainer, 3 seeds, in full): test MSE per trainer; a
  trainer that cannot learn from irregular times is recorded n/a there, with its reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from specbench.core.records import REGIMES, Study, Vocabulary
from specbench.registries import SYSTEMS, TRAINERS, candidate, equation_systems, get_system, record_roles, with_role
from specbench.running.job import Job, make_job
from specbench.running.presets import REFERENCE_PRESET, load_preset


@dataclass(frozen=True)
class Size:
    full: bool
    seeds: int | None  # None: the study's own default
    device: str
    threads: int
    budget_s: float | None = None  # training seconds of every run (`--budget`); None: the study's own for its size


@dataclass(frozen=True)
class Plan:
    """A study: its name, what it measures, and the jobs it runs at a size."""

    name: str
    description: str
    plan: Callable[[Size], list[Job]]


@lru_cache(maxsize=1)
def _paper():
    return load_preset(REFERENCE_PRESET)  # read once per plan, not once per job


def _job(size: Size, system: str, trainer: str, seed: int, budget_s: float, study: Study, *, regime: str = "dense",
         config: dict | None = None, cadence: dict | None = None, **kw) -> Job:
    """A study job with the paper preset's target and cadence and the tuned settings (updated by `config`)."""
    if cadence:
        kw["cadence"] = cadence
    return make_job(system, trainer, regime, seed, budget_s=budget_s, preset=_paper(), config=config,
                    device=size.device, threads=size.threads, study=study, **kw)


def _seeds(size: Size, small: int, full: int) -> range:
    return range(size.seeds or (full if size.full else small))


def _budget_s(size: Size, small: float, full: float) -> float:
    """The training seconds of each of the study's runs: `--budget` where given, else the study's own for its size
    (its default and its --full size, the values behind the committed studies)."""
    return size.budget_s or (full if size.full else small)


WHOLE = "whole trajectories"  # the horizon study's variant of a solver trainer on whole trajectories
MINIBATCH = "element mini-batches"  # the horizon study's variant of the candidate with elements_per_step set


def minibatch_elements() -> int:
    """The mini-batch the candidate's tuning grid tries (32 elements: of 192 at 101 times and 4000 at 2001)."""
    return next(v for v in TRAINERS[candidate()].tuning_grid["elements_per_step"] if v != "all")


def plan_horizon(size: Size) -> list[Job]:
    system = get_system("lotka-volterra")
    dense = system.regimes["dense"]
    dt = system.t_span / (dense.n_times - 1)  # the sampling interval stays; the span grows with the count
    budget_s = _budget_s(size, 3.0, 10.0)
    only_ends = {"first": budget_s, "max_interval": budget_s}  # the metric at the start and at the end
    jobs = []
    for n in [101, 201, 501, 1001, 2001] + ([5001] if size.full else []):
        data = {"n_times": n, "t_span": dt * (n - 1)}
        # three seeds at every size: one process's peak RSS moves by 10-20% from run to run, so a memory ratio near
        # a threshold needs the median of three
        for seed in _seeds(size, 3, 3):
            for trainer, cls in TRAINERS.items():
                variants = {trainer: {}}
                if cls.solves_ode:
                    variants[Study.label(trainer, WHOLE)] = {"segment_length": n, "batch_size": dense.n_train}
                if cls.role == "candidate":  # activations of a fixed number of elements, whatever the horizon
                    variants[Study.label(trainer, MINIBATCH)] = {"elements_per_step": minibatch_elements()}
                for series, config in variants.items():
                    jobs.append(_job(size, system.name, trainer, seed, budget_s,
                                     Study("horizon", "n_times", n, series),
                                     config=config, cadence=only_ends, data=data))
    return jobs


def plan_state_size(size: Size) -> list[Job]:
    budget_s = _budget_s(size, 8.0, 20.0)
    return [_job(size, "network", trainer, seed, budget_s,
                 Study("state-size", "N", n, trainer), system_params={"n": n})
            for n in [4, 8, 16, 32, 64, 128] + ([256] if size.full else [])
            for seed in _seeds(size, 1, 3) for trainer in TRAINERS]


ORDERS = [1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20]
ELEMENTS = [1, 2, 4, 8, 16]


def plan_order(size: Size) -> list[Job]:
    budget_s = _budget_s(size, 6.0, 20.0)
    jobs = []
    for system in ["oscillator"] + (["cubic-oscillator"] if size.full else []):
        n_obs = SYSTEMS[system]().regimes["dense"].n_times
        # (variable, value, E, p, noise)
        sweeps = [("p", p, 4, p, noise) for noise in (0.0, 0.01) for p in ORDERS] + \
                 [("E", e, e, 6, 0.0) for e in ELEMENTS]
        for variable, value, E, p, noise in sweeps:
            if E * p + 1 > n_obs:  # more nodes than observations: the fit is no longer determined by the data
                continue
            series = f"{system}, E={E}, noise {noise:g}" if variable == "p" else f"{system}, p={p}, noise {noise:g}"
            for seed in _seeds(size, 1, 3):
                jobs.append(_job(size, system, candidate(), seed, budget_s,
                                 Study("order", variable, value, series),
                                 config={"E": E, "p": p}, noise=noise, measure=["representation_error"]))
    return jobs


NOISES = [0.0, 0.01, 0.05]


def plan_regimes(size: Size) -> list[Job]:
    systems = equation_systems() if size.full else ["oscillator", "lotka-volterra"]
    trainers = list(TRAINERS) if size.full else with_role("candidate", "baseline")
    budget_s = _budget_s(size, 6.0, 20.0)
    return [_job(size, system, trainer, seed, budget_s,
                 Study("regimes", "noise", noise, regime), regime=regime,
                 noise=noise)
            for system in systems for regime in REGIMES if regime in get_system(system).regimes for noise in NOISES
            for seed in _seeds(size, 1, 3) for trainer in trainers]


STUDIES = {s.name: s for s in [
    Plan("horizon", "per-step time, network evaluations per step and peak memory against trajectory length "
                     "(Lotka-Volterra, 101-2001 observation times), every trainer", plan_horizon),
    Plan("state-size", "per-step time, peak memory and time to target against N (network, N = 4-128), "
                        "every trainer", plan_state_size),
    Plan("order", "representation error, time to target and test MSE against the Legendre order p and the "
                   "element count E (oscillator), spectral trainer", plan_order),
    Plan("regimes", "test MSE per trainer, dense, sparse and irregular sampling at noise 0, 1% and 5% "
                     "(oscillator, Lotka-Volterra)", plan_regimes),
]}


def vocabulary() -> Vocabulary:
    """The names a reader of records knows here: every registered trainer and every study (records.load)."""
    return Vocabulary(record_roles(), tuple(STUDIES))
