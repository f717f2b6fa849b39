import json
import shutil

import pytest

from specbench.claims.gate import compare, decide
from specbench.claims.verdicts import group
from specbench.core.records import Study, load
from tests.helpers import make_record, one_line_exit_2, replace, run_cli, save, sweep, write_records


def test_gate_passes_against_a_copy_of_itself(tmp_path):
    write_records(tmp_path / "base", sweep())
    shutil.copytree(tmp_path / "base", tmp_path / "cand")
    proc = run_cli("gate", tmp_path / "base", tmp_path / "cand")
    assert proc.returncode == 0, proc.stdout
    assert "no regression" in proc.stdout and "WORSE" not in proc.stdout


def test_gate_fails_on_a_2x_slower_time_to_target_and_names_it(tmp_path):
    write_records(tmp_path / "base", sweep())
    shutil.copytree(tmp_path / "base", tmp_path / "cand")
    for path in (tmp_path / "cand" / "runs").glob("oscillator__backprop-dopri5__*.json"):
        r = load(path)
        save(path, replace(r, time_to_target_s=r.time_to_target_s * 2))
    proc = run_cli("gate", tmp_path / "base", tmp_path / "cand")
    assert proc.returncode == 1
    regressions = proc.stdout.split("regression(s)")[1]
    assert "oscillator / dense / backprop-dopri5: time to target" in regressions
    assert "backprop-rk4" not in regressions and "spectral" not in regressions
    # a looser factor lets the same change through
    assert run_cli("gate", tmp_path / "base", tmp_path / "cand", "--factor", "2.5").returncode == 0


def test_missing_or_failed_runs_are_regressions(tmp_path):
    base = sweep()
    cand = [r for r in base if r.trainer != "adjoint-dopri5"]
    cand = [replace(r, status="diverged", error="boom") if r.trainer == "backprop-rk4" and r.seed == 1
            else r for r in cand]
    rows, regressions = compare(group(base), group(cand), 1.25)
    text = "\n".join(regressions)
    assert "adjoint-dopri5: no runs in the candidate" in text
    assert "backprop-rk4: seeds [1] ok in the baseline" in text
    assert not any("spectral" in line for line in regressions)


def test_gate_bad_input_is_exit_2(tmp_path):
    (tmp_path / "empty" / "runs").mkdir(parents=True)
    write_records(tmp_path / "base", sweep())
    for args, needle in (((tmp_path / "base", tmp_path / "nowhere"), "not a directory"),
                         ((tmp_path / "base", tmp_path / "empty"), "no run records"),
                         ((tmp_path / "base", tmp_path / "base", "--factor", "-1"), "--factor")):
        one_line_exit_2(run_cli("gate", *args), needle)


def test_study_points_are_gated_apart():
    """Two horizon points of one trainer are not two seeds: doubling the memory at one point is a regression
    named by that point, though the median over both would move by less than the factor."""
    from specbench.claims.gate import points

    def study(n, memory):
        return replace(make_record(trainer="spectral", memory=memory), study=Study("horizon", "n_times", n, "spectral"))

    base = [study(101, 1_000_000), study(2001, 20_000_000)]
    cand = [study(101, 2_000_000), study(2001, 20_000_000)]
    _, regressions = compare(points(base), points(cand), 1.25)
    assert len(regressions) == 1 and "n_times=101" in regressions[0] and "peak memory" in regressions[0]
    assert compare(group(base), group(cand), 1.25)[1] == []  # what pooling the points as seeds would miss


def test_a_slower_median_that_the_seeds_spread_explains_is_noise_not_a_regression(tmp_path):
    """5 seeds a side: spectral's median time to target 1.4x the baseline's (beyond the 1.25 factor), but the
    ranks of the two samples are mixed, so the rank test does not call it a regression."""
    write_records(tmp_path / "base", sweep(spec=(1.0, 3.0, 0.9, 2.5, 0.95)))
    write_records(tmp_path / "cand", sweep(spec=(1.4, 1.3, 0.8, 2.6, 1.5)))
    proc = run_cli("gate", tmp_path / "base", tmp_path / "cand")
    assert proc.returncode == 0, proc.stdout
    row = next(line for line in proc.stdout.splitlines() if "dense / spectral" in line and "time to target" in line)
    assert "noise" in row and "1.4" in row
    # every candidate seed slower than every baseline seed: beyond the noise
    write_records(tmp_path / "cand", sweep(spec=(3.1, 3.2, 3.5, 3.3, 3.4)))
    proc = run_cli("gate", tmp_path / "base", tmp_path / "cand")
    assert proc.returncode == 1 and "dense / spectral: time to target" in proc.stdout.split("regression(s)")[1]


@pytest.mark.parametrize("base, cand, verdict, tested", [
    ([1.0, 1.1, 0.9, 1.05, 0.95], [2.0, 2.1, 1.9, 2.05, 1.95], "worse", True),  # 2x, apart: beyond the noise
    ([1.0, 1.1, 0.9, 1.05, 0.95], [0.5, 0.55, 0.45, 0.52, 0.48], "better", True),
    ([1.0, 3.0, 0.9, 2.5, 0.95], [1.4, 1.3, 0.8, 2.6, 1.5], "noise", True),  # medians 1.4x apart, ranks mixed
    ([1.0, 1.1, 0.9], [2.0, 2.1, 1.9], "worse", False),  # 3 a side: the test cannot reach 0.05, the factor decides
    ([1.0, 1.1, 0.9, 1.05, 0.95], [1.1, 1.2, 1.0, 1.15, 1.05], "same", False),  # within the factor
    ([1.0, 1.1, 0.9, 1.2, 0.95], [None, None, None, 1.3, None], "worse", True),  # reached -> mostly not reached
])
def test_decide_needs_the_factor_and_the_rank_test(base, cand, verdict, tested):
    state, _, p = decide(base, cand, 1.25)
    assert state == verdict and (p is not None) == tested


def test_gate_compares_two_work_files_exactly(tmp_path):
    values = {"nfe_per_iteration": 2.0, "metric_after_n": 0.5, "iterations_to_target": 40, "held_bytes": 1000}
    base = {"settings": {}, "metric_rtol": 1e-3, "values": {"oscillator": {"spectral": values}}}
    (tmp_path / "a.json").write_text(json.dumps(base))
    (tmp_path / "b.json").write_text(json.dumps({**base, "values": {"oscillator": {"spectral": {
        **values, "iterations_to_target": 50}}}}))
    assert run_cli("gate", tmp_path / "a.json", tmp_path / "a.json").returncode == 0
    proc = run_cli("gate", tmp_path / "a.json", tmp_path / "b.json")
    assert proc.returncode == 1 and "oscillator / spectral: iterations to 3x target 40 -> 50 (worse)" in proc.stdout
    (tmp_path / "bad.json").write_text("{}")
    one_line_exit_2(run_cli("gate", tmp_path / "a.json", tmp_path / "bad.json"), "not a work file")
