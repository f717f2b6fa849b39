"""The record's schemas: schema 2 (first crossing, sustained time, best checkpoint) and schema-1 records, read
into the same shape without changing what they measured."""
import json
from pathlib import Path

import pytest

from specbench.core.errors import UsageError
from specbench.core.records import first_crossing, load, problems_of, sustained
from specbench.running.presets import Preset, budget_s_for, check, load_preset
from specbench.running.studies import vocabulary
from tests.helpers import ROOT, make_record, save

CURVE = [[0.0, 0, 1.0], [1.0, 10, 5e-3], [2.0, 20, 2e-2], [3.0, 30, 8e-3], [4.0, 40, 4e-3]]


def test_first_crossing_and_sustained_time_of_a_curve_that_crosses_climbs_back_and_crosses_again():
    assert first_crossing(CURVE, 1e-2) == 1.0 and sustained(CURVE, 1e-2) == 3.0
    assert first_crossing(CURVE, 1e-3) is None and sustained(CURVE, 1e-3) is None
    assert sustained(CURVE[:3], 1e-2) is None  # crossed, then lost at the end of the budget


def schema_1(tmp_path, **changes) -> Path:
    """A schema-1 record as the sustained rule wrote it: time_to_target_s sustained, first crossings beside."""
    raw = make_record(as_dict=True)
    for key in ("sustained_s", "sustained_times", "best_checkpoint"):
        del raw[key]
    raw.update(schema=1, curve=CURVE, time_to_target_s=3.0,
               times_to_targets={"0.03": 1.0, "0.01": 3.0, "0.00333": None},
               first_crossing_s=1.0, first_crossings={"0.03": 1.0, "0.01": 1.0, "0.00333": None}, **changes)
    path = tmp_path / "runs" / "r.json"
    save(path, raw)
    return path


def test_a_schema_1_record_reads_its_first_crossings_as_times_to_target_and_keeps_its_sustained_times(tmp_path):
    r = load(schema_1(tmp_path), vocabulary())
    assert (r.schema, r.time_to_target_s, r.sustained_s) == (2, 1.0, 3.0)
    assert r.times_to_targets == {"0.03": 1.0, "0.01": 1.0, "0.00333": None}
    assert r.sustained_times == {"0.03": 1.0, "0.01": 3.0, "0.00333": None}
    assert r.best_checkpoint is None  # its test errors are of the final model


def test_a_schema_1_record_older_than_first_crossings_takes_them_from_its_curve(tmp_path):
    raw = json.loads(schema_1(tmp_path).read_text())
    del raw["first_crossing_s"], raw["first_crossings"]
    save(tmp_path / "runs" / "r.json", raw)
    r = load(tmp_path / "runs" / "r.json", vocabulary())
    assert r.time_to_target_s == 1.0 and r.times_to_targets == {"0.03": 1.0, "0.01": 1.0, "0.00333": None}


def test_a_schema_1_run_that_did_not_end_ok_reached_nothing(tmp_path):
    r = load(schema_1(tmp_path, status="diverged", error="non-finite loss"), vocabulary())
    assert r.time_to_target_s is None and set(r.times_to_targets.values()) == {None}


def test_committed_schema_1_records_read_with_their_first_crossings():
    """A record of the small reference (made under the sustained rule): lotka-volterra dense spectral seed 0
    crossed the target at 2.25 s and kept it only from 10.0 s (the issue's example)."""
    r = load(ROOT / "results/small-reference/runs/lotka-volterra__spectral__dense__seed0.json", vocabulary())
    assert round(r.time_to_target_s, 2) == 2.25 and round(r.sustained_s, 2) == 10.0


@pytest.mark.parametrize("best, ok", [({"seconds": 1.0, "iteration": 3, "metric": 1e-3}, True),
                                      ({"seconds": 1.0, "iteration": 3}, False),
                                      ({"seconds": -1.0, "iteration": 3, "metric": 1e-3}, False),
                                      ({"seconds": 1.0, "iteration": 3, "metric": float("nan")}, False)])
def test_a_best_checkpoint_must_say_when_and_how_good(best, ok):
    raw = make_record(as_dict=True)
    raw["best_checkpoint"] = best
    assert (problems_of(raw, vocabulary()) == []) == ok


def test_a_schema_this_specbench_does_not_know_is_refused():
    assert any("schema 3" in p for p in problems_of({**make_record(as_dict=True), "schema": 3}, vocabulary()))


def paper_like(**kw) -> Preset:
    return Preset(**{"name": "p", "systems": ["oscillator"], "trainers": ["spectral"], "regimes": ["dense", "sparse"],
                     "seeds": 1, "budget_s": 20.0, **kw})


def test_a_preset_gives_each_system_and_regime_its_budget():
    preset = paper_like(budget_s={"default": 20.0, "oscillator": {"sparse": 5}})
    check(preset, "p")
    assert budget_s_for(preset, "oscillator", "sparse") == 5.0 and budget_s_for(preset, "oscillator", "dense") == 20.0
    assert budget_s_for(paper_like(budget_s={"oscillator": 7}), "oscillator", "dense") == 7.0  # every regime


@pytest.mark.parametrize("budget_s", [{"lorenz": {"dense": 5}}, {"oscillator": {"medium": 5}},
                                      {"oscillator": {"dense": -5}}, {"oscillator": {"dense": 5}}, "fast", -1.0,
                                      {"default": {"dense": 5}}])
def test_a_broken_budget_s_is_refused(budget_s):
    with pytest.raises(UsageError, match="budget_s"):
        check(paper_like(budget_s=budget_s), "p")


def test_a_preset_in_the_layout_before_one_budget_name_still_loads(tmp_path):
    """budget_s a number with a [budgets] table of overrides (before issue 35) reads as the table with a default."""
    path = tmp_path / "old.toml"
    path.write_text('systems = ["oscillator", "lorenz"]\ntrainers = ["spectral"]\nregimes = ["dense", "sparse"]\n'
                    'seeds = 1\nbudget_s = 20\n[budgets]\noscillator = {sparse = 5}\n')
    preset = load_preset(str(path))
    assert [budget_s_for(preset, s, r) for s in ("oscillator", "lorenz") for r in ("dense", "sparse")] == \
        [20.0, 5.0, 20.0, 20.0]
