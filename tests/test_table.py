"""The results table (specbench.core.table): a row per record, the group-bys the verdicts read, and
`specbench export`."""
import importlib.util
import math

import pandas as pd
import pytest

from specbench.claims.verdicts import group, per_cell
from specbench.core.table import COLUMNS, grouped, table
from tests.helpers import ROOT, make_record, one_line_exit_2, run_cli, sweep, write_records



def test_a_row_per_record_with_the_measures_the_report_counts():
    records = sweep() + [make_record(trainer="backprop-rk4", seed=3, status="diverged")]
    t = table(records)
    assert list(t.columns) == [*COLUMNS, "record"] and len(t) == len(records)
    assert list(t["record"]) == records
    spec = t[t.trainer == "spectral"].sort_values("seed")
    assert list(spec["time_to_target_s"]) == [1.0, 1.2, 0.8]
    assert list(spec["memory_bytes"]) == [1_000_000] * 3 and list(spec["budget_s"]) == [10.0] * 3
    failed = t[t.status == "diverged"].iloc[0]
    assert math.isnan(failed["time_to_target_s"]) and math.isnan(failed["test_mse"])  # no model to judge
    assert t["study"].isna().all()


def test_the_group_bys_keep_seed_order_and_registry_order():
    records = list(reversed(sweep()))  # seeds and trainers in the wrong order
    groups = group(records)
    assert [r.seed for r in groups[("oscillator", "dense", "spectral")]] == [0, 1, 2]
    (system, regime, per), = per_cell(records)
    assert (system, regime) == ("oscillator", "dense")
    assert list(per) == ["spectral", "backprop-rk4", "backprop-dopri5", "adjoint-dopri5"]
    assert grouped(table([]), "trainer") == {}


def test_export_csv_round_trips(tmp_path):
    records = sweep()
    write_records(tmp_path / "sweep", records)
    out = tmp_path / "runs.csv"
    proc = run_cli("export", tmp_path / "sweep", "--out", out)
    assert proc.returncode == 0, proc.stderr
    back = pd.read_csv(out)
    assert list(back.columns) == list(COLUMNS) and len(back) == len(records)
    mine = table(records).drop(columns="record").sort_values(["trainer", "seed"]).reset_index(drop=True)
    back = back.sort_values(["trainer", "seed"]).reset_index(drop=True)
    for column in ("system", "trainer", "role", "seed", "time_to_target_s", "test_mse", "memory_bytes", "config"):
        assert list(back[column]) == list(mine[column]), column


def test_export_reads_a_directory_of_studies(tmp_path):
    out = tmp_path / "studies.csv"
    assert run_cli("export", ROOT / "results" / "small-reference-studies", "--out", out).returncode == 0
    back = pd.read_csv(out)
    assert len(back) > 0 and back["study"].notna().all()


def test_export_of_a_missing_directory_is_one_line(tmp_path):
    one_line_exit_2(run_cli("export", tmp_path / "nowhere", "--out", tmp_path / "x.csv"), "is not a directory")


def test_export_to_an_unknown_suffix_is_one_line_before_reading(tmp_path):
    proc = run_cli("export", tmp_path / "nowhere", "--out", tmp_path / "x.xlsx")
    one_line_exit_2(proc, "give a file ending in .csv or .parquet", alone=True)
    assert not (tmp_path / "x.xlsx").exists()


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow is installed here")
def test_parquet_without_pyarrow_is_one_line(tmp_path):
    write_records(tmp_path / "sweep", sweep())
    one_line_exit_2(run_cli("export", tmp_path / "sweep", "--out", tmp_path / "x.parquet"), "needs pyarrow",
                    alone=True)


def test_every_column_is_documented():
    text = (ROOT / "docs" / "record.md").read_text()
    assert [c for c in COLUMNS if f"`{c}`" not in text] == []
