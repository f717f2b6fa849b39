import math

import pytest

from specbench.report import write_report
from specbench.report.verdicts import claims, median, speedup
from specbench.results import write_atomic
from tests.conftest import run_cli
from tests.records import make_record, sweep

BASES = ("backprop-rk4", "backprop-dopri5", "adjoint-dopri5")


def verdict(records, claim):
    [v] = [v for v in claims(records) if v.claim == claim]
    return v


def test_median_counts_unreached_as_infinite():
    assert median([1.0, None, 3.0]) == 3.0
    assert median([1.0, None, None]) == math.inf
    assert median([1.0, 2.0, 4.0, 8.0]) == 3.0


def test_speed_claim_holds_at_20x():
    v = verdict(sweep(), "C1")
    assert v.verdict == "holds"
    assert v.ratios["backprop-rk4"].value == pytest.approx(25.0) and not v.ratios["backprop-rk4"].lower


def test_speed_claim_fails_when_one_baseline_is_close():
    v = verdict(sweep(baselines={"backprop-rk4": (2.0, 3.0, 4.0), "backprop-dopri5": (30, 30, 30),
                                 "adjoint-dopri5": (30, 30, 30)}), "C1")
    assert v.verdict == "fails" and "backprop-rk4" in v.why
    assert v.ratios["backprop-rk4"].value == pytest.approx(3.0)


def test_unreached_baseline_gives_a_lower_bound():
    recs = sweep(baselines={b: (None, None, None) for b in BASES})
    v = verdict(recs, "C1")
    assert all(r.lower for r in v.ratios.values())
    assert v.ratios["adjoint-dopri5"].value == pytest.approx(10.0 / 1.0)  # budget over spectral's median
    assert str(v.ratios["adjoint-dopri5"]).startswith("> 10")
    assert v.verdict == "holds"


def test_short_lower_bound_is_inconclusive():
    recs = sweep(spec=(4.0, 4.0, 4.0), baselines={b: (None, None, None) for b in BASES})
    v = verdict(recs, "C1")
    assert v.verdict == "inconclusive" and "lower bound" in v.why


def test_spectral_never_reaching_the_target_is_inconclusive():
    v = verdict(sweep(spec=(None, None, 2.0)), "C1")
    assert v.verdict == "inconclusive"


def test_diverged_baseline_counts_as_unreached():
    recs = sweep()
    recs = [make_record(trainer=r["trainer"], seed=r["seed"], ttt=None, status="diverged")
            if r["trainer"] == "adjoint-dopri5" else r for r in recs]
    r = speedup([x for x in recs if x["trainer"] == "spectral"], [x for x in recs if x["trainer"] == "adjoint-dopri5"])
    assert r.lower and r.value == pytest.approx(10.0)


def test_mse_and_memory_claims():
    v2 = verdict(sweep(base_mse=1e-1), "C2")  # spectral 1e-3 against 1e-1: 100x
    assert v2.verdict == "holds" and v2.ratios["backprop-dopri5"].value == pytest.approx(100.0)
    assert verdict(sweep(base_mse=2e-3), "C2").verdict == "fails"
    assert verdict(sweep(), "C3").verdict == "holds"  # 1 MB against 2 MB
    assert verdict(sweep(memory=5_000_000), "C3").verdict == "fails"


def test_scaling_claims_are_inconclusive_without_studies():
    from specbench.report.studies import study_verdicts

    verdicts = {v.claim: v for v in study_verdicts([])}
    assert verdicts["C4"].verdict == "inconclusive" and "specbench study horizon" in verdicts["C4"].why
    assert verdicts["C5"].verdict == "inconclusive" and "specbench study order" in verdicts["C5"].why


def write_records(directory, records):
    for r in records:
        write_atomic(directory / "runs" / f"{r['system']}__{r['trainer']}__{r['regime']}__seed{r['seed']}.json", r)


def test_report_is_written_and_tables_are_reproducible(tmp_path):
    write_records(tmp_path, sweep())
    md, page = write_report(tmp_path, tmp_path / "out")
    text = md.read_text()
    assert "| C1 | oscillator | dense | **holds** |" in text
    assert "predate the memory warm-up" in text  # hand-made records have no setup_memory_bytes
    assert (tmp_path / "out" / "figures" / "oscillator-dense-curves.png").stat().st_size > 1000
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 3 and "<strong>holds</strong>" in html
    md2, _ = write_report(tmp_path, tmp_path / "again")
    assert md2.read_text() == text


def test_corrupt_record_is_skipped_with_a_warning_naming_it(tmp_path):
    write_records(tmp_path, sweep())
    (tmp_path / "runs" / "broken.json").write_text("{not json")
    proc = run_cli("report", tmp_path, "--out", tmp_path / "out")
    assert proc.returncode == 0 and "broken.json" in proc.stderr
    assert "broken.json" in (tmp_path / "out" / "report.md").read_text()


def test_empty_directory_is_exit_2(tmp_path):
    (tmp_path / "runs").mkdir()
    proc = run_cli("report", tmp_path)
    assert proc.returncode == 2 and "no run records" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("report", tmp_path / "missing")
    assert proc.returncode == 2 and "not a directory" in proc.stderr
