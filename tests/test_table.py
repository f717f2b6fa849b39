"""The results table (specbench.table): a row per record, and the group-bys the verdicts read."""
import math
from pathlib import Path

from specbench.table import COLUMNS, grouped, table
from specbench.verdicts import group, per_cell
from tests.helpers import make_record, sweep

ROOT = Path(__file__).resolve().parents[1]


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


def test_every_column_is_documented():
    text = (ROOT / "docs" / "record.md").read_text()
    assert [c for c in COLUMNS if f"`{c}`" not in text] == []
