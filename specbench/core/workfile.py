"""The work file (`specbench work --out`, results/work/reference.json): what it holds, validated at the door, and
the exact comparison of two of them (`specbench work --check`, `specbench gate FILE FILE`). Reading and comparing
needs no torch: the measures themselves are made in `specbench.running.work_measures`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

from specbench.core.errors import UsageError

SCHEMA = 1
REFERENCE = "results/work/reference.json"
COMMAND = f"specbench work --out {REFERENCE}"
METRIC_RTOL = 1e-3  # float32 training: round-off differs across CPUs and BLAS builds (docs/asv-and-gate.md)
# Between two CPU models (the file's env.cpu against this machine's) round-off also moves an adaptive solver's
# accepted steps: on the 35 pairs built in then (7 trainers) an Intel Xeon gave network evaluations per iteration
# up to 7.3% off an AMD EPYC's (cubic-oscillator / torchode-dopri5: 21.8 -> 23.4), and the metric after N up to
# 1e-4 off, with every count of iterations and bytes equal. So across CPU models those two measures are compared
# within this tolerance and everything else exactly; on the CPU model the file was made on, everything is exact.
CROSS_CPU_RTOL = 0.1
MEASURES = {  # name in the file -> what the gate calls it
    "nfe_per_iteration": "network evaluations / iteration",
    "metric_after_n": "metric after N iterations",
    "iterations_to_target": "iterations to 3x target",
    "held_bytes": "bytes held by the trainer",
}


@dataclass(frozen=True)
class Settings:
    """What decides the work values besides the code: a reference file carries them, and its check reuses them."""

    iterations: int = 30  # N
    cap: int = 60  # iterations run in all; the target must be reached (and kept) within them
    every: int = 10  # the common metric is evaluated every `every` iterations
    seed: int = 0
    regime: str = "dense"


def _count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def problems_of(data) -> list[str]:
    """What is wrong with a work file's JSON (empty when nothing): every value is checked, not only the top."""
    if not isinstance(data, dict):
        return ["not a JSON object"]
    problems = []
    settings = data.get("settings")
    if not isinstance(settings, dict):
        problems.append("no 'settings' object")
    else:
        kinds = {f.name: f.type for f in fields(Settings)}
        for key, value in settings.items():
            if key not in kinds:
                problems.append(f"unknown setting {key!r} (known: {', '.join(kinds)})")
            elif kinds[key] == "int" and not (_count(value) and value > 0 or key == "seed" and _count(value)):
                problems.append(f"setting {key!r} should be a positive integer, got {value!r}")
            elif kinds[key] == "str" and not isinstance(value, str):
                problems.append(f"setting {key!r} should be a string, got {value!r}")
    rtol = data.get("metric_rtol", 0.0)
    if not (isinstance(rtol, (int, float)) and not isinstance(rtol, bool) and 0 <= rtol < 1):
        problems.append(f"'metric_rtol' should be a number in [0, 1), got {rtol!r}")
    values = data.get("values")
    if not isinstance(values, dict):
        problems.append("no 'values' object")
        return problems
    for system, by_trainer in values.items():
        if not isinstance(by_trainer, dict):
            problems.append(f"values of {system!r} should be an object of trainers, got {by_trainer!r:.40}")
            continue
        for trainer, measured in by_trainer.items():
            where = f"{system} / {trainer}"
            if not isinstance(measured, dict):
                problems.append(f"{where}: should be an object of measures, got {measured!r:.40}")
                continue
            for key, value in measured.items():
                if key not in MEASURES:
                    problems.append(f"{where}: unknown measure {key!r}")
                elif value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                                and math.isfinite(value) and value >= 0):
                    problems.append(f"{where}: {key} should be a number >= 0 or null, got {value!r:.40}")
    return problems


def read(path: Path | str) -> dict:
    """A work file; anything else is a UsageError naming the file and what is wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise UsageError(f"{path} is not a work file from `specbench work --out` ({exc})") from None
    problems = problems_of(data)
    if not problems and data.get("incomplete"):
        raise UsageError(f"{path} is incomplete: a work process died before {', '.join(data['incomplete'])} "
                         f"{'was' if len(data['incomplete']) == 1 else 'were'} measured; run `specbench work --out` "
                         "again for a whole file")
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UsageError(f"{path} is not a work file from `specbench work --out`: {problems[0]}{more}")
    return data


def incomplete_path(path: Path) -> Path:
    """Where `specbench work --out PATH` puts the pairs it measured when a work process died: beside PATH, never
    over it (a complete file there stays), marked "incomplete" so no check takes it for a reference."""
    return path.with_name(f"{path.stem}.incomplete{path.suffix}")


def settings_of(reference: dict) -> Settings:
    """The settings a (validated) work file was made with."""
    return Settings(**reference["settings"])


def same_cpu(reference: dict, candidate: dict) -> bool:
    """Whether two work files were made on one CPU model (their env.cpu)."""
    return reference.get("env", {}).get("cpu") == candidate.get("env", {}).get("cpu")


def tolerances(reference: dict, candidate: dict) -> dict[str, float]:
    """measure -> the relative tolerance it is compared with (0: exactly): see METRIC_RTOL and CROSS_CPU_RTOL."""
    rtol = {"metric_after_n": float(reference.get("metric_rtol", 0.0))}
    if not same_cpu(reference, candidate):
        rtol = {"metric_after_n": CROSS_CPU_RTOL, "nfe_per_iteration": CROSS_CPU_RTOL}
    return rtol


def compare(reference: dict, candidate: dict, pairs: list[tuple[str, str]] | None = None
            ) -> tuple[list[list[str]], list[str]]:
    """Table rows and mismatches (one line each, naming system, trainer and measure) between two work files, over
    `pairs` (default: every pair in either). Every value must be equal, except within `tolerances` (the metric's
    round-off; across CPU models, an adaptive solver's step count too); a value better than the reference is a
    mismatch too, since a reference left behind would let a later regression back to it through."""
    ref, now = reference["values"], candidate["values"]
    rtols = tolerances(reference, candidate)
    if pairs is None:
        pairs = sorted({(s, t) for v in (ref, now) for s in v for t in v[s]})
    rows, mismatches = [], []
    for s, t in pairs:
        a, b = ref.get(s, {}).get(t), now.get(s, {}).get(t)
        if a is None or b is None:
            where = "the reference" if a is None else "the candidate"
            rows.append([f"{s} / {t}", "all", "-", "-", "MISSING"])
            mismatches.append(f"{s} / {t}: no work values in {where}")
            continue
        for key, measure in MEASURES.items():
            x, y = a.get(key), b.get(key)
            rtol = rtols.get(key, 0.0)
            if x == y:
                state = "same"
            elif rtol and x is not None and y is not None and math.isclose(x, y, rel_tol=rtol):
                state = f"same (within {rtol:g})"
            else:
                state = "worse" if (math.inf if y is None else y) > (math.inf if x is None else x) else "better"
                mismatches.append(f"{s} / {t}: {measure} {_value(x)} -> {_value(y)} ({state})")
            rows.append([f"{s} / {t}", measure, _value(x), _value(y), state.upper()
                         if state in ("worse", "better") else state])
    if mismatches:
        mismatches.append(f"if the change is intended, regenerate the reference: {COMMAND}")
    return rows, mismatches


def _value(x) -> str:
    """Counts and bytes in full (they are compared exactly), other floats to 6 digits."""
    if x is None:
        return "none"
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}"
