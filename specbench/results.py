"""The run record: one JSON file per run (schema in DESIGN.md), written atomically, validated on load."""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path

SCHEMA = 1
STATUSES = ("ok", "diverged", "timeout", "error")
REQUIRED = {
    "schema": int, "system": str, "trainer": str, "regime": str, "seed": int, "status": str, "config": dict,
    "target_loss": float, "times_to_targets": dict, "train_seconds": float, "eval_seconds": float,
    "iterations": int, "curve": list, "env": dict,
}
NULLABLE = {"error": str, "time_to_target_s": float, "final_train_loss": float, "test_mse": float,
            "test_nmse": float, "peak_memory_bytes": int}


class CorruptRecord(Exception):
    """A record file that cannot be parsed or does not follow the schema."""


OPTIONAL = {  # fields added after schema 1 first shipped: checked where present
    "setup_memory_bytes": int, "step_seconds": float, "nfe_per_iteration": float, "study": dict,
    "representation_error": float, "job_key": str, "first_crossing_s": float, "first_crossings": dict,
}


def new_record(job, status: str, env: dict, error: str | None = None, **measured) -> dict:
    """The one place a record is assembled: the job's identity and settings, then what the run measured; what
    it did not measure keeps its empty value (a failed run's record is this with nothing measured). `job` is a
    specbench.job.Job; `measured` may only name fields of the schema."""
    from specbench.job import targets_for

    empty_targets = {k: None for k in targets_for(job.target)}
    record = {
        "schema": SCHEMA, "job_key": job.key(), "system": job.system, "trainer": job.trainer, "regime": job.regime,
        "seed": job.seed, "status": status, "error": error,
        "config": {**job.config, "budget_s": job.budget_s, "noise": job.noise, "device": job.device,
                   "threads": job.threads},
        "target_loss": float(job.target), "time_to_target_s": None, "times_to_targets": empty_targets,
        "first_crossing_s": None, "first_crossings": dict(empty_targets),
        "train_seconds": 0.0, "eval_seconds": 0.0, "iterations": 0, "final_train_loss": None, "test_mse": None,
        "test_nmse": None, "peak_memory_bytes": None, "study": job.study, "curve": [], "env": env,
    }
    unknown = set(measured) - set(REQUIRED) - set(NULLABLE) - set(OPTIONAL) - {"test_rollout"}
    if unknown:
        raise ValueError(f"not record fields: {', '.join(sorted(unknown))}")
    return {**record, **measured}


def record_name(system: str, trainer: str, regime: str, seed: int, study: dict | None = None) -> str:
    """The record's file name; a study's records carry the study, the swept value and the series."""
    name = f"{system}__{trainer}__{regime}__seed{seed}.json"
    if study:
        series = "".join(ch if ch.isalnum() or ch in "-=." else "-" for ch in str(study.get("series", "")))
        name = f"{study['name']}__{study['variable']}={study['value']}__{series}__{name}"
    return name


def _finite_or_none(value):
    """JSON has no inf/NaN: non-finite numbers are written as null (read: not reached / no value)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def write_atomic(path: Path | str, payload: dict) -> None:
    """Write a record as JSON to a temporary file beside `path`, then rename: a reader never sees half a file."""
    write_bytes_atomic(path, json.dumps(_finite_or_none(payload), indent=1, allow_nan=False).encode())


def write_text_atomic(path: Path | str, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    """Write `data` to a temporary file beside `path` (never read as a record: it starts with '.tmp-'), then
    rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def validate(record: dict) -> list[str]:
    """What is wrong with a record (empty when it follows the schema)."""
    if not isinstance(record, dict):
        return ["not a JSON object"]
    problems = []
    for key, kind in {**REQUIRED, **NULLABLE, **OPTIONAL}.items():
        if key not in record:
            if key not in OPTIONAL:
                problems.append(f"missing {key!r}")
            continue
        value = record[key]
        if value is None and key not in REQUIRED:
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else \
            isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            problems.append(f"{key!r} should be {kind.__name__}, got {type(value).__name__}")
    if record.get("schema") not in (None, SCHEMA) and "schema" in record:
        problems.append(f"schema {record['schema']!r}, this specbench reads schema {SCHEMA}")
    if record.get("status") not in STATUSES:
        problems.append(f"status {record.get('status')!r} not one of {', '.join(STATUSES)}")
    if isinstance(record.get("curve"), list):
        for point in record["curve"]:
            if not (isinstance(point, list) and len(point) == 3 and finite_number(point[0]) and finite_number(point[1])
                    and (point[2] is None or finite_number(point[2]))):
                problems.append("'curve' points must be [train_seconds, iteration, metric or null]")
                break
    for key in ("times_to_targets", "first_crossings"):
        value = record.get(key)
        if isinstance(value, dict) and not all(finite_number(k, parse=True) and (v is None or finite_number(v))
                                               for k, v in value.items()):
            problems.append(f"{key!r} must map targets to seconds or null")
    study = record.get("study")
    if isinstance(study, dict) and not (isinstance(study.get("name"), str) and isinstance(study.get("variable"), str)
                                        and finite_number(study.get("value")) and isinstance(study.get("series"), str)):
        problems.append("'study' must have a name, a variable, a numeric value and a series")
    if "test_rollout" in record:
        problems += _rollout_problems(record["test_rollout"])
    budget = record.get("config", {}).get("budget_s") if isinstance(record.get("config"), dict) else None
    if budget is not None and not finite_number(budget):
        problems.append("'config.budget_s' must be a number")
    return problems


def finite_number(x, parse: bool = False) -> bool:
    """A finite number (not a bool); with parse=True, also a string that reads as one (dict keys)."""
    if parse and isinstance(x, str):
        try:
            x = float(x)
        except ValueError:
            return False
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


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


def load(path: Path | str) -> dict:
    """A validated record; CorruptRecord naming the file and the first problem otherwise."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptRecord(f"{path}: unreadable ({exc.__class__.__name__}: {exc})") from None
    except RecursionError:
        raise CorruptRecord(f"{path}: nested too deeply to be a run record") from None
    problems = validate(record)
    if problems:
        raise CorruptRecord(f"{path}: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    return record


def load_sweep(directory: Path | str) -> tuple[list[dict], list[str]]:
    """Records of a sweep directory for the report and the gate: each corrupt file is a warning on stderr; a
    missing directory or one without a valid record is a UsageError."""
    from specbench.errors import UsageError

    if not Path(directory).is_dir():
        raise UsageError(f"{directory} is not a directory of run records")
    records, warnings = load_dir(directory)
    _warn(warnings)
    if not records:
        raise UsageError(f"no run records in {directory} (expected JSON files in {directory}/runs)")
    return records, warnings


def _warn(warnings: list[str]) -> None:
    """Each skipped record, one line on stderr: the user sees what the report or gate left out."""
    for w in warnings:
        print(f"specbench: warning: {w}", file=sys.stderr)


def load_studies(directory: Path | str) -> tuple[list[dict], list[str]]:
    """Records of a study directory (DIR/runs) or of a directory of them (DIR/*/runs), for the report."""
    from specbench.errors import UsageError

    directory = Path(directory)
    dirs = [directory] if (directory / "runs").is_dir() else \
        sorted(d for d in directory.glob("*") if (d / "runs").is_dir()) if directory.is_dir() else []
    records, warnings = [], []
    for d in dirs:
        more, more_warnings = load_dir(d)
        records += [r for r in more if r.get("study")]
        warnings += more_warnings
    _warn(warnings)
    if not records:
        raise UsageError(f"no study records in {directory} (expected DIR/runs or DIR/*/runs with study records;"
                         f" make them with `specbench study NAME --out DIR`)")
    return records, warnings


def load_dir(directory: Path | str) -> tuple[list[dict], list[str]]:
    """All valid records under DIR/runs (or DIR itself), and a warning per file skipped as corrupt."""
    directory = Path(directory)
    runs = directory / "runs" if (directory / "runs").is_dir() else directory
    records, warnings = [], []
    for path in sorted(p for p in runs.glob("*.json") if not p.name.startswith(".")):  # .tmp-*: unfinished
        try:
            records.append(load(path))
        except CorruptRecord as exc:
            warnings.append(f"skipped corrupt record {exc}")
    return records, warnings
