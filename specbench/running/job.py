"""A job: one training run, everything that decides its record, built by the one factory every sweep uses
(`specbench run`, `study`, `tune` and the asv suite), so each gets the same target, settings and defaults."""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field

from specbench.core.records import Study, record_name
from specbench.registries import SYSTEMS, env_plugins, get_trainer
from specbench.running.presets import SWEEP_PRESET, config_for, load_preset, tuned_entry, tuned_settings
from specbench.trainers.settings import check


@dataclass
class Job:
    """One run: everything that decides its record, and nothing that depends on the process that made it."""

    system: str
    trainer: str
    regime: str
    seed: int
    budget_s: float
    target: float
    config: dict
    noise: float = 0.0
    system_params: dict = field(default_factory=dict)
    device: str = "cpu"
    threads: int = 1
    cadence: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # System.resized overrides of the regime: n_times, t_span, n_train
    study: Study | None = None  # scaling studies: where the run sits in its study, copied into the record
    measure: list = field(default_factory=list)  # extra measurements: "representation_error"
    plugins: list = field(default_factory=list)  # plugin modules the worker loads first (specbench.registries)
    # A process of its own (True), or a persistent worker's that has served other runs and keeps torch, the
    # trainers and the datasets loaded (False): no figure but memory depends on it, and a persistent worker does
    # not measure memory (specbench.running.executors). The caller chooses: tuning reports no memory, a sweep does.
    fresh_process: bool = True

    def __post_init__(self):
        if isinstance(self.study, dict):  # a job read back from JSON (specbench.running.worker)
            self.study = Study(**self.study)

    @property
    def name(self) -> str:
        return record_name(self.system, self.trainer, self.regime, self.seed, self.study)

    def with_seed(self, seed: int) -> Job:
        """This job on another seed, its config a copy: a sweep makes one job per (system, regime, trainer) and
        copies it per seed. A plain copy of the fields: dataclasses.replace runs __init__ again at several times the
        cost, which a sweep of 10,000 seeds (hundreds of thousands of jobs) feels."""
        job = object.__new__(Job)
        job.__dict__.update(self.__dict__, seed=seed, config=dict(self.config))
        return job

    def to_dict(self) -> dict:
        return asdict(self)

    def key(self) -> str:
        """A hash of everything that decides the run's outcome, stored in its record: resume compares it, so a
        record is never taken for another job's. Plugins are where the code lives, not what it does; the process
        is where it runs (which memory needs: `specbench.running.sweeps.is_done`)."""
        decided = {k: v for k, v in self.to_dict().items() if k not in ("plugins", "fresh_process")}
        return hashlib.sha256(json.dumps(decided, sort_keys=True, default=str).encode()).hexdigest()[:16]


def make_job(system: str, trainer: str, regime: str, seed: int, *, budget_s: float, preset=None,
             target: float | None = None, config: dict | None = None, device: str = "cpu", threads: int = 1,
             from_defaults: bool = False, **kw) -> Job:
    """The job for (system, trainer, regime, seed). Its target is `target`, else the preset's override, else the
    system's own. Its settings, later winning: the trainer's defaults (applied by the trainer), the tuned
    settings, the preset's [settings.SYSTEM.TRAINER], then `config` (with `from_defaults`, `config` over the
    defaults alone: a tuning run's point, which nothing tuned before may change); each checked against the
    trainer's declared settings (a UsageError naming the valid ones or the valid values). Cadence, noise and
    system parameters come from the preset unless given. Plugins in use are carried, so a worker anywhere builds
    the same registry."""
    preset = preset or load_preset(SWEEP_PRESET)
    config = {**({} if from_defaults else config_for(preset, system, regime, trainer)), **(config or {})}
    # Checked now, before any run: a typo or a value out of range is one line, not hours of a run that ignored it.
    check(get_trainer(trainer).settings, config, f"{trainer} ({system} / {regime})")
    if target is None:
        target = preset.targets.get(system, SYSTEMS.get_class(system).target)
    kw.setdefault("cadence", preset.cadence)
    kw.setdefault("noise", preset.noise)
    kw.setdefault("system_params", preset.system_params.get(system, {}))
    return Job(system=system, trainer=trainer, regime=regime, seed=seed, budget_s=float(budget_s),
               target=float(target), config=config, device=device, threads=int(threads), plugins=env_plugins(),
               **kw)


def untuned(jobs: list[Job], preset=None) -> list[tuple[str, str, str]]:
    """(system, regime, trainer) among `jobs` that no tuning run chose settings for: they run on the trainer's
    defaults (and the preset's settings), which a sweep says at its start and the report marks."""
    tuned = tuned_settings(preset)
    return sorted(cell for cell in {(j.system, j.regime, j.trainer) for j in jobs}
                  if tuned_entry(tuned, *cell) is None)


def warn_untuned(jobs: list[Job], preset=None) -> None:
    missing = untuned(jobs, preset)
    if missing:
        print(f"specbench: note: no tuned settings for {', '.join(' / '.join(m) for m in missing)}; "
              "they run on trainer defaults (`specbench tune` chooses settings)", file=sys.stderr)
