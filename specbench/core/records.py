"""The run record: one JSON file per run (docs/record.md), a typed value in memory, validated at the door.

`Record` says what a record is, once: its fields and their types, what may be null, what must be finite and
non-negative, the names it may carry (statuses, roles, studies) and its file name. A record that passes `load` is
safe for every consumer (report, gate, tune, resume): a reader never checks a field again. Records made before a
field existed still load: a missing optional field is None, a missing role is given by the caller (the trainers
whose records predate the field, `specbench.trainers.RECORDED_ROLES`).

The targets a run is timed to (3x, 1x and 1/3x the system's target) and their keys in `times_to_targets` are
also here: the protocol writes them, the report and the work measures read them.

Schema 2 (the practitioner's rule, docs/design.md, "Measurement protocol"): `time_to_target_s` and `times_to_targets`
are **first crossings**, the sustained times are `sustained_s` and `sustained_times` (stability), and `test_mse`
and `test_nmse` are those of the best checkpoint, whose time, iteration and metric are `best_checkpoint`.
A schema-1 record (the sustained rule, the model at the end of the budget) is read into the same shape: its
sustained times move to `sustained_*`, its first crossings (`first_crossing_s`, `first_crossings`; from the curve
where it predates them) become its times to target, and it has no `best_checkpoint`: its test errors are of the
final model, which the report says.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from specbench.core.errors import UsageError
from specbench.core.io import write_json_atomic

SCHEMA = 2
SCHEMAS = (1, 2)  # what this specbench reads (schema 1 is translated on reading, see above)
# "n/a": the trainer cannot learn from the job's data (inputs, hidden states, irregular times); `error` says why
STATUSES = ("ok", "diverged", "timeout", "error", "n/a")
# What a trainer is in the comparison: the method under test, a variant of it that isolates one of its parts, a
# method of the paper's comparison, or another fast-training method the paper did not compare with. In this order
# in every table and legend.
ROLES = ("candidate", "ablation", "baseline", "rival")
# The sampling regimes: `dense` and `sparse` every system has (the headline's); `irregular` (the dense counts, each
# training trajectory at its own random times) every equation system made with `systems.base.regimes` has
REGIMES = ("dense", "sparse", "irregular")
REQUIRED_REGIMES = REGIMES[:2]
TARGET_FACTORS = (3.0, 1.0, 1.0 / 3.0)  # times to 3x, 1x and 1/3x the system's target: no single knife edge
# Where a run's wall time went (`Record.wall`, seconds), in the order a run spends it; the parts sum to "total":
#   start        from the executor starting the run to its first work: process start, imports, plugins (a
#                persistent worker started for the run is in it; one already running has none of this to pay)
#   data         the system and its dataset (from memory in a persistent worker, else the disk cache or generated)
#   warm_up      the untimed warm-up of the run's own trainer (one step and an evaluation on a sliver), and the
#                garbage collection and memory baselines that prepare the process for the clock
#   training     the training clock's stretches: building the trainer and the steps, evaluations excluded
#   evaluation   the common metric's evaluations during training, with the best-checkpoint copies and the memory
#                measure's pauses around them (eval_seconds and those pauses)
#   test_errors  the best checkpoint's rollouts on the test states
#   write        the rest: the record made, written and read back by the executor, and the run process's exit
#   total        the run on its worker, from the executor starting it to its record in the executor's hand
# A run that failed before writing its record has "total" alone.
WALL_PARTS = ("start", "data", "warm_up", "training", "evaluation", "test_errors", "write")
PROCESSES = ("fresh", "persistent")  # env.process: a run's own process, or a worker's that serves run after run


def target_key(target: float) -> str:
    """The key of `target` in `times_to_targets` and `sustained_times`."""
    return f"{target:.3g}"


def targets_for(target: float) -> dict[str, float]:
    """key -> value of the targets a run is timed to, in TARGET_FACTORS order (3x, 1x, 1/3x)."""
    return {target_key(target * k): target * k for k in TARGET_FACTORS}


class CorruptRecord(Exception):
    """A record file that cannot be parsed or does not follow the schema."""


@dataclass(frozen=True)
class Vocabulary:
    """The names a reader knows, which the layers above give (specbench.running.studies.vocabulary): every trainer, with
    the role its records had before records carried one (None where they always did), and every study."""

    roles: Mapping[str, str | None]
    studies: Collection[str]


@dataclass(frozen=True)
class Study:
    """Where a study's run sits: the study, the variable it sweeps and its value here, and the series (a line in
    the study's figures). A trainer's series is its name, or its name and a variant, e.g. `backprop-rk4 (whole
    trajectories)`; `label` writes that form and `variant` reads it, here and nowhere else."""

    name: str
    variable: str
    value: float
    series: str

    @staticmethod
    def label(trainer: str, variant: str = "") -> str:
        """The series of `trainer`, or of its `variant`."""
        return f"{trainer} ({variant})" if variant else trainer

    @staticmethod
    def split(series: str) -> tuple[str, str]:
        """(base, variant) of a series `label` wrote: (trainer, "") for a trainer's plain series."""
        head, sep, rest = series.partition(" (")
        return (head, rest[:-1]) if sep and rest.endswith(")") else (series, "")

    @property
    def base(self) -> str:
        """The series without its variant: the trainer's name for a trainer's series."""
        return self.split(self.series)[0]

    @property
    def variant(self) -> str:
        return self.split(self.series)[1]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def finite_number(x, parse: bool = False) -> bool:
    """A finite number (not a bool); with parse=True, also a string that reads as one (dict keys)."""
    if parse and isinstance(x, str):
        try:
            x = float(x)
        except ValueError:
            return False
    return _number(x) and math.isfinite(x)


# Field kinds, checked by `Record.from_dict`: "quantity" is a finite number >= 0, "count" an int >= 0.
_KINDS = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "count": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
          "float": finite_number, "quantity": lambda v: finite_number(v) and v >= 0,
          "str": lambda v: isinstance(v, str), "dict": lambda v: isinstance(v, dict),
          "list": lambda v: isinstance(v, list)}
_KIND_WORDS = {"int": "an integer", "count": "an integer >= 0", "float": "a finite number",
               "quantity": "a finite number >= 0", "str": "a string", "dict": "an object", "list": "a list"}


@dataclass(frozen=True)
class Record:
    """One run's record. Fields with a default are nullable (None: not measured, not reached) or were added after
    schema 1 first shipped; `times_to_targets` (first crossings) and `sustained_times` map target keys to seconds
    or None; `best_checkpoint` is {"seconds", "iteration", "metric"} of the model the test errors are of."""

    system: str
    trainer: str
    role: str
    regime: str
    seed: int
    status: str
    config: dict
    target_loss: float
    times_to_targets: dict
    train_seconds: float
    eval_seconds: float
    iterations: int
    curve: list  # [[train_seconds, iteration, metric or None], ...]
    env: dict
    schema: int = SCHEMA
    error: str | None = None
    time_to_target_s: float | None = None
    final_train_loss: float | None = None
    test_mse: float | None = None
    test_nmse: float | None = None
    peak_memory_bytes: int | None = None
    setup_memory_bytes: int | None = None
    step_seconds: float | None = None
    nfe_per_iteration: float | None = None
    representation_error: float | None = None
    study: Study | None = None
    job_key: str | None = None
    sustained_s: float | None = None
    sustained_times: dict | None = None
    best_checkpoint: dict | None = None
    test_rollout: dict | None = None  # the first test trajectory: t (n), truth (n x k), pred (n x k or None)
    # building the trainer: on the training clock (in train_seconds and the curve) since the clock covers setup;
    # None in records made before, whose clocks started after it
    setup_seconds: float | None = None
    wall: dict | None = None  # WALL_PARTS and "total" -> seconds of wall time; None in records made before it
    # the system-identification field's figures of the test simulation, on the measured outputs: RMSE in the
    # outputs' units and R² (1 is a perfect fit; below 0 worse than the outputs' mean); None in records made before
    test_rmse: float | None = None
    test_r2: float | None = None

    # name -> kind; the required fields are those without a default above
    KINDS = {"schema": "int", "system": "str", "trainer": "str", "role": "str", "regime": "str", "seed": "count",
             "status": "str", "config": "dict", "target_loss": "quantity", "times_to_targets": "dict",
             "train_seconds": "quantity", "eval_seconds": "quantity", "iterations": "count", "curve": "list",
             "env": "dict", "error": "str", "time_to_target_s": "quantity", "final_train_loss": "quantity",
             "test_mse": "quantity", "test_nmse": "quantity", "peak_memory_bytes": "count",
             "setup_memory_bytes": "count", "step_seconds": "quantity", "nfe_per_iteration": "quantity",
             "representation_error": "quantity", "study": "dict", "job_key": "str",
             "sustained_s": "quantity", "sustained_times": "dict", "best_checkpoint": "dict", "test_rollout": "dict",
             "setup_seconds": "quantity", "wall": "dict", "test_rmse": "quantity", "test_r2": "float"}
    SCHEMA_1 = {"first_crossing_s": "quantity", "first_crossings": "dict"}  # read, then translated (from_dict)

    @property
    def target_keys(self) -> dict[float, str]:
        """factor -> the key of `factor` x the target in `times_to_targets` (TARGET_FACTORS)."""
        return {k: target_key(self.target_loss * k) for k in TARGET_FACTORS}

    @property
    def budget_s(self) -> float:
        """The training seconds the run was given, its config's `budget_s` (what a baseline that never arrived is
        bounded by); a record without one, its training seconds."""
        b = self.config.get("budget_s")
        return float(b) if b is not None else float(self.train_seconds)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def name(self) -> str:
        """The record's file name."""
        return record_name(self.system, self.trainer, self.regime, self.seed, self.study)

    @property
    def identity(self) -> tuple:
        """What one record stands for: two records with the same identity are one run counted twice."""
        return self.system, self.trainer, self.regime, self.seed, self.study

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["study"] = self.study.to_dict() if self.study else None
        for late in ("test_rollout", "setup_seconds", "wall", "test_rmse", "test_r2"):  # absent, not null, where none
            if out[late] is None:
                del out[late]
        return out

    @classmethod
    def from_dict(cls, raw, vocabulary: Vocabulary | None = None) -> Record:
        """The record a JSON object holds; ValueError naming its problems otherwise. With a `vocabulary`, a
        record of a trainer or study it does not know is refused, and one without a role gets its trainer's."""
        problems = problems_of(raw, vocabulary)
        role = vocabulary.roles.get(raw["trainer"]) if vocabulary else None
        if problems:
            raise ValueError(f"{problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
        values = {k: raw[k] for k in cls.KINDS if k in raw}
        values.setdefault("role", role)
        if raw.get("schema", 1) == 1:
            values.update(_from_schema_1(raw))
        if values.get("study"):
            s = values["study"]
            values["study"] = Study(s["name"], s["variable"], s["value"], s["series"])
        return cls(**values)


REQUIRED = [f.name for f in dataclasses.fields(Record) if f.default is dataclasses.MISSING]


def first_crossing(curve: list, target: float) -> float | None:
    """Training seconds at the first evaluation of `curve` ([[seconds, iteration, metric], ...]) at or below
    `target`, whatever came after; None when there is none."""
    return next((s for s, _, m in curve if m is not None and m <= target), None)


def sustained(curve: list, target: float) -> float | None:
    """Training seconds at the first evaluation of `curve` from which every later metric is at or below `target`;
    None when the last one is above it (or is missing)."""
    t = None
    for seconds, _, metric in reversed(curve):
        if metric is None or not math.isfinite(metric) or metric > target:
            break
        t = seconds
    return t


def _from_schema_1(raw: dict) -> dict:
    """A schema-1 record's times in schema 2's fields: its sustained times move to `sustained_*`; its first
    crossings (recorded, or from the curve where the record predates them) become its times to target. A run that
    did not end ok reached nothing, by either rule."""
    ok = raw["status"] == "ok"
    firsts = raw.get("first_crossings")
    if firsts is None:
        firsts = {k: first_crossing(raw["curve"], float(k)) for k in raw["times_to_targets"]}
    firsts = {k: v if ok else None for k, v in firsts.items()}
    first = raw.get("first_crossing_s") if raw.get("first_crossings") is not None else \
        first_crossing(raw["curve"], raw["target_loss"])
    return {"schema": 2, "time_to_target_s": first if ok else None, "times_to_targets": firsts,
            "sustained_s": raw.get("time_to_target_s"), "sustained_times": raw["times_to_targets"],
            "best_checkpoint": None}


def problems_of(raw, vocabulary: Vocabulary | None = None) -> list[str]:
    """What is wrong with a record's JSON object (empty when it follows the schema)."""
    if not isinstance(raw, dict):
        return ["not a JSON object"]
    role = None
    if vocabulary is not None and isinstance(raw.get("trainer"), str):
        if raw["trainer"] not in vocabulary.roles:
            return [f"unknown trainer {raw['trainer']!r} (known: {', '.join(vocabulary.roles)}; a plugin's trainer "
                    "needs its --plugin)"]
        role = vocabulary.roles[raw["trainer"]]
    kinds = {**Record.KINDS, **Record.SCHEMA_1} if raw.get("schema", 1) == 1 else Record.KINDS
    problems = [f"unknown field {k!r}" for k in raw if k not in kinds]
    for key, kind in kinds.items():
        if key not in raw:
            if key in REQUIRED and not (key == "role" and role is not None):
                problems.append(f"missing {key!r}")
            continue
        value = raw[key]
        if value is None and key not in REQUIRED:
            continue
        if not _KINDS[kind](value):
            problems.append(f"{key!r} should be {_KIND_WORDS[kind]}, got {value!r:.40}")
    if raw.get("schema", 1) not in SCHEMAS:
        problems.append(f"schema {raw['schema']!r}, this specbench reads schemas {', '.join(map(str, SCHEMAS))}")
    if raw.get("status") not in STATUSES:
        problems.append(f"status {raw.get('status')!r} not one of {', '.join(STATUSES)}")
    if raw.get("role", role) not in ROLES:
        problems.append(f"role {raw.get('role', role)!r} not one of {', '.join(ROLES)}")
    if raw.get("regime") not in REGIMES:
        problems.append(f"regime {raw.get('regime')!r} not one of {', '.join(REGIMES)}")
    if isinstance(raw.get("curve"), list):
        for point in raw["curve"]:
            if not (isinstance(point, list) and len(point) == 3 and finite_number(point[0]) and point[0] >= 0
                    and finite_number(point[1]) and point[1] >= 0
                    and (point[2] is None or finite_number(point[2]) and point[2] >= 0)):
                problems.append("'curve' points must be [train_seconds, iteration, metric or null], non-negative")
                break
    for key in ("times_to_targets", "sustained_times", "first_crossings"):
        value = raw.get(key)
        if isinstance(value, dict) and not all(finite_number(k, parse=True) and (v is None or finite_number(v)
                                                                                  and v >= 0)
                                               for k, v in value.items()):
            problems.append(f"{key!r} must map targets to seconds (>= 0) or null")
    study = raw.get("study")
    if isinstance(study, dict):
        if not (isinstance(study.get("name"), str) and isinstance(study.get("variable"), str)
                and finite_number(study.get("value")) and isinstance(study.get("series"), str)):
            problems.append("'study' must have a name, a variable, a numeric value and a series")
        elif vocabulary is not None and study["name"] not in vocabulary.studies:
            problems.append(f"unknown study {study['name']!r} (known: {', '.join(vocabulary.studies)})")
    best = raw.get("best_checkpoint")
    if isinstance(best, dict) and not (set(best) == {"seconds", "iteration", "metric"}
                                       and all(finite_number(v) and v >= 0 for v in best.values())):
        problems.append("'best_checkpoint' must be {seconds, iteration, metric}, each a finite number >= 0")
    if "test_rollout" in raw:
        problems += _rollout_problems(raw["test_rollout"])
    wall = raw.get("wall")
    if isinstance(wall, dict) and not all(k in (*WALL_PARTS, "total") and finite_number(v) and v >= 0
                                          for k, v in wall.items()):
        problems.append(f"'wall' must map {', '.join(WALL_PARTS)} and total to seconds (>= 0)")
    config = raw.get("config")
    budget_s = config.get("budget_s") if isinstance(config, dict) else None
    if budget_s is not None and not (finite_number(budget_s) and budget_s >= 0):
        problems.append("'config.budget_s' must be a number >= 0")
    return problems


def _rollout_problems(roll) -> list[str]:
    """The first test rollout: times (n,), truth (n, k) and a prediction of the same shape or null."""
    if roll is None:
        return []
    bad = ["'test_rollout' must have t (n), truth (n x k) and pred (n x k or null)"]
    if not (isinstance(roll, dict) and isinstance(roll.get("t"), list) and isinstance(roll.get("truth"), list)):
        return bad
    n = len(roll["t"])
    if not all(finite_number(t) for t in roll["t"]):
        return bad

    def matrix(m):
        return isinstance(m, list) and len(m) == n and all(isinstance(row, list) for row in m) and \
            len({len(row) for row in m}) <= 1 and all(v is None or finite_number(v) for row in m for v in row)
    if not matrix(roll["truth"]) or not (roll.get("pred") is None or matrix(roll["pred"])):
        return bad
    if roll.get("pred") is not None and n and len(roll["pred"][0]) != len(roll["truth"][0]):
        return bad
    return []


def new_record(job, role: str, status: str, env: dict, error: str | None = None, **measured) -> Record:
    """The one place a record is assembled: the job's identity and settings, then what the run measured; what
    it did not measure keeps its empty value (a failed run's record is this with nothing measured). `job` is a
    specbench.running.job.Job; `role` its trainer's; `measured` may only name fields of the record."""
    empty_targets = {k: None for k in targets_for(job.target)}
    unknown = set(measured) - set(Record.KINDS)
    if unknown:
        raise ValueError(f"not record fields: {', '.join(sorted(unknown))}")
    config = measured.pop("config", None) or job_config(job)
    env = {**env, "process": PROCESSES[not job.fresh_process]}  # a reader sees whether memory could be measured
    return Record(**{
        "job_key": job.key(), "system": job.system, "trainer": job.trainer, "role": role, "regime": job.regime,
        "seed": job.seed, "status": status, "error": error, "config": config, "target_loss": float(job.target),
        "times_to_targets": empty_targets, "sustained_times": dict(empty_targets), "train_seconds": 0.0,
        "eval_seconds": 0.0, "iterations": 0, "study": job.study, "curve": [], "env": env, **measured})


def job_config(job, settings: dict | None = None, **more) -> dict:
    """The settings a record keeps: `settings` (the trainer's resolved config; default the job's), how the job
    ran, the system's parameters as the job gives them, and `more` (what the run resolved: the data's layout, the
    cadence, the system's parameters in full). A run that failed before it built its system still says which
    system it was (a measured benchmark's structure)."""
    return {**(job.config if settings is None else settings), "budget_s": job.budget_s, "noise": job.noise,
            "device": job.device, "threads": job.threads, "system_params": job.system_params, **more}


# What a record's config holds beside the run's settings (job_config's `more`): the data's layout, the cadence, and
# the environment of records made before `env` was a field of its own
HARNESS_KEYS = ("env", "data", "cadence")


def record_settings(r: Record, skip: tuple = ()) -> dict:
    """A record's settings, as a table of them shows: its config without HARNESS_KEYS and the keys in `skip`."""
    return {k: v for k, v in r.config.items() if k not in HARNESS_KEYS + skip}


def record_name(system: str, trainer: str, regime: str, seed: int, study: Study | dict | None = None) -> str:
    """The record's file name; a study's records carry the study, the swept value and the series."""
    name = f"{system}__{trainer}__{regime}__seed{seed}.json"
    if study:
        study = Study(**study) if isinstance(study, dict) else study
        series = "".join(ch if ch.isalnum() or ch in "-=." else "-" for ch in str(study.series))
        name = f"{study.name}__{study.variable}={study.value}__{series}__{name}"
    return name


def write(path: Path | str, record: Record) -> None:
    """Write a record atomically (a reader never sees half a file)."""
    write_json_atomic(path, record.to_dict())


def load(path: Path | str, vocabulary: Vocabulary | None = None) -> Record:
    """A validated record; CorruptRecord naming the file and the first problem otherwise (`Record.from_dict`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptRecord(f"{path}: unreadable ({exc.__class__.__name__}: {exc})") from None
    return parse(text, str(path), vocabulary)


def parse(text: str, source: str, vocabulary: Vocabulary | None = None) -> Record:
    """A validated record from its JSON text (a file's, or what a run's process sent); CorruptRecord naming `source`
    and the first problem otherwise."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptRecord(f"{source}: unreadable ({exc.__class__.__name__}: {exc})") from None
    except RecursionError:
        raise CorruptRecord(f"{source}: nested too deeply to be a run record") from None
    try:
        return Record.from_dict(raw, vocabulary)
    except ValueError as exc:
        raise CorruptRecord(f"{source}: {exc}") from None


def record_paths(runs: Path) -> list[Path]:
    """The finished records in the folder `runs`, sorted: its *.json files but the dot files (pathlib's "*" also
    matches the ".tmp-*.json" an atomic write renames into place, which is not a record yet)."""
    return sorted(p for p in runs.glob("*.json") if not p.name.startswith("."))


def load_dir(directory: Path | str, vocabulary: Vocabulary | None = None
             ) -> tuple[list[Record], list[str]]:
    """All valid records under DIR/runs (or DIR itself), a warning per file skipped as corrupt, and one per
    record that repeats another's run (same system, trainer, regime, seed and study): it is counted once."""
    directory = Path(directory)
    runs = directory / "runs" if (directory / "runs").is_dir() else directory
    records, warnings, seen = [], [], {}
    for path in record_paths(runs):
        try:
            record = load(path, vocabulary)
        except CorruptRecord as exc:
            warnings.append(f"skipped corrupt record {exc}")
            continue
        if record.identity in seen:
            warnings.append(f"skipped {path}: the same run as {seen[record.identity]}")
            continue
        seen[record.identity] = path
        records.append(record)
    return records, warnings


def _readable_dir(directory: Path) -> bool:
    try:
        return directory.is_dir()
    except OSError:  # a name too long, a component that is a file: not a directory of records
        return False


def load_sweep(directory: Path | str, vocabulary: Vocabulary | None = None
               ) -> tuple[list[Record], list[str]]:
    """Records of a sweep directory for the report and the gate: each skipped file is a warning on stderr; a
    missing directory is a UsageError. A directory whose files are all corrupt gives no records."""
    if not _readable_dir(Path(directory)):
        raise UsageError(f"{directory} is not a directory of run records")
    records, warnings = load_dir(directory, vocabulary)
    warn(warnings)
    if not records and not warnings:
        raise UsageError(f"no run records in {directory} (expected JSON files in {directory}/runs)")
    return records, warnings


def load_studies(directory: Path | str, vocabulary: Vocabulary | None = None
                 ) -> tuple[list[Record], list[str]]:
    """Records of a study directory (DIR/runs) or of a directory of them (DIR/*/runs), for the report."""
    directory = Path(directory)
    dirs = [directory] if _readable_dir(directory / "runs") else \
        sorted(d for d in directory.glob("*") if (d / "runs").is_dir()) if _readable_dir(directory) else []
    records, warnings = [], []
    for d in dirs:
        more, more_warnings = load_dir(d, vocabulary)
        records += [r for r in more if r.study]
        warnings += more_warnings
    warn(warnings)
    if not records:
        raise UsageError(f"no study records in {directory} (expected DIR/runs or DIR/*/runs with study records;"
                         f" make them with `specbench study NAME --out DIR`)")
    return records, warnings


def warn(warnings: list[str]) -> None:
    """Each skipped record, one line on stderr: the user sees what the report or gate left out."""
    for w in warnings:
        print(f"specbench: warning: {w}", file=sys.stderr)

