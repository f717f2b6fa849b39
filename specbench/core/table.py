"""Every run record as a row of one table (a pandas DataFrame): what `specbench export` writes for a notebook, and
what the report's and the verdicts' groupings are group-bys over.

benchopt keeps its results the same way, a row per run and every plot a query over that table. The columns are
declared once, here (`COLUMNS`: name, meaning, how a record gives it), and listed in docs/record.md. In memory the
table also has the column `record`, the `Record` itself, so that a group-by hands its groups to the verdict rules.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from specbench.core import measures
from specbench.core.errors import UsageError
from specbench.core.io import write_bytes_atomic, write_text_atomic
from specbench.core.records import Record, Vocabulary, load_studies, load_sweep

if TYPE_CHECKING:
    import pandas as pd


def _study(field: str) -> Callable[[Record], object]:
    return lambda r: getattr(r.study, field) if r.study else None


def _env(key: str) -> Callable[[Record], object]:
    return lambda r: r.env.get(key)


def _time(factor: float) -> Callable[[Record], float | None]:
    return lambda r: measures.time_to_target(r, r.target_keys[factor])


# name -> (meaning, the record's value); a missing value (not measured, not reached, not a study) is empty
COLUMNS: dict[str, tuple[str, Callable[[Record], object]]] = {
    "system": ("the system", lambda r: r.system),
    "trainer": ("the trainer", lambda r: r.trainer),
    "role": ("its role: candidate, ablation, baseline or rival", lambda r: r.role),
    "regime": ("dense or sparse", lambda r: r.regime),
    "seed": ("the seed", lambda r: r.seed),
    "status": ("ok, diverged, timeout, error or n/a", lambda r: r.status),
    "error": ("why a run that is not ok stopped", lambda r: r.error),
    "study": ("the scaling study (empty for a headline run)", _study("name")),
    "variable": ("the variable the study sweeps", _study("variable")),
    "value": ("its value in this run", lambda r: float(r.study.value) if r.study else None),
    "series": ("the study's series: a trainer, or a trainer and its variant", _study("series")),
    "budget_s": ("the training seconds the run was given", measures.budget_s),
    "target_loss": ("the system's target for the common metric", lambda r: r.target_loss),
    "time_to_3x_target_s": ("first crossing of 3x the target (training seconds)", _time(3.0)),
    "time_to_target_s": ("first crossing of the target: C1's time", measures.time_to_target),
    "time_to_third_target_s": ("first crossing of the target / 3", _time(1 / 3)),
    "sustained_s": ("from the first evaluation after which the metric stays at or below the target: C1 kept's "
                    "time", measures.sustained_time),
    "train_seconds": ("training seconds, setup included, evaluations excluded", lambda r: r.train_seconds),
    "eval_seconds": ("seconds of the common metric's evaluations", lambda r: r.eval_seconds),
    "iterations": ("training steps", lambda r: r.iterations),
    "step_s": ("seconds per training step (median after the first)", measures.time_per_iteration),
    "final_train_loss": ("the common metric at the last evaluation", lambda r: r.final_train_loss),
    "test_mse": ("test MSE of the model judged (the best checkpoint; inf: it blew up): C2's measure",
                 measures.test_mse),
    "test_nmse": ("test MSE over the test data's variance", lambda r: r.test_nmse),
    "test_rmse": ("test RMSE on the measured outputs, in their units", lambda r: r.test_rmse),
    "test_r2": ("R² of the test simulation on the outputs", lambda r: r.test_r2),
    "memory_bytes": ("peak memory, setup + training peak: C3's measure", measures.peak_memory),
    "nfe_per_iteration": ("network evaluations per training step: C4's measure", measures.nfe),
    "representation_error": ("the order study's representation error", lambda r: r.representation_error),
    "git_commit": ("the commit the run was made at", _env("git_commit")),
    "device": ("cpu or cuda", _env("device")),
    "threads": ("threads per run", _env("threads")),
    "config": ("every setting of the run, as JSON", lambda r: json.dumps(r.config, sort_keys=True)),
}


def table(records: list[Record]) -> pd.DataFrame:
    """One row per record, in the records' order: the COLUMNS, then `record`, the Record itself."""
    import pandas as pd  # about 0.3 s to import: only commands that group or export records pay it

    columns = {name: [get(r) for r in records] for name, (_, get) in COLUMNS.items()}
    return pd.DataFrame({**columns, "record": pd.Series(records, dtype=object)}, columns=[*COLUMNS, "record"])


def grouped(frame: pd.DataFrame, by: str | list[str]) -> dict:
    """The group-by every grouping of records is: the value of the column `by` (or the tuple of the columns `by`)
    -> the records with it, groups and records in the frame's order (sort it first for another)."""
    return {key: list(rows["record"]) for key, rows in frame.groupby(by, sort=False, dropna=False)}


def _only_studies(directory: Path) -> bool:
    """Whether DIR holds study directories (DIR/*/runs) and no records of its own."""
    try:
        return not (directory / "runs").is_dir() and not any(directory.glob("*.json")) and \
            any(directory.glob("*/runs"))
    except OSError:  # a name too long to look up: not a directory of studies, and load_sweep says what it is
        return False


def load(directory: Path | str, studies=(), vocabulary: Vocabulary | None = None
         ) -> tuple[list[Record], list[str]]:
    """The records of a sweep directory (DIR/runs) and of study directories (each a study's DIR/runs or a directory
    of them), and a warning per file left out: what the report and `specbench export` read. A DIR that holds only
    study directories (e.g. results/studies) is read as one."""
    directory = Path(directory)
    read = load_studies if _only_studies(directory) else load_sweep
    records, warnings = read(directory, vocabulary)
    for d in studies:
        more, more_warnings = load_studies(d, vocabulary)
        records, warnings = records + more, warnings + more_warnings
    return records, warnings


EXPORTS = (".csv", ".parquet")


def export_path(text: str) -> Path:
    """FILE.csv, or FILE.parquet where pyarrow is installed: `specbench export --out`, checked before any record is
    read; a UsageError (one line) for anything else."""
    path = Path(text)
    if path.suffix.lower() not in EXPORTS:
        raise UsageError(f"--out {text!r}: give a file ending in {' or '.join(EXPORTS)}")
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401  optional: only Parquet needs it
        except ImportError:
            raise UsageError("writing Parquet needs pyarrow, which is not installed: `pip install pyarrow`, or give "
                             "--out FILE.csv") from None
    return path


def export(records: list[Record], path: Path | str) -> None:
    """Write the table, one row per record and the COLUMNS (not `record`), to `path` (export_path) atomically."""
    frame = table(records).drop(columns="record")
    if export_path(str(path)).suffix.lower() == ".csv":
        write_text_atomic(path, frame.to_csv(index=False))
    else:
        write_bytes_atomic(path, frame.to_parquet(index=False))
