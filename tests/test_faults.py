"""Bad input and faults: each gets one clear line and the documented exit status, never a traceback, and no record
is lost, replaced or double-counted."""
import json
import math
import signal
import time
from pathlib import Path

import pytest

from specbench.core.records import load, load_dir
from tests.helpers import (ROOT, gone, make_record, one_line_exit_2, processes, replace, run_cli, save, start_cli,
                           sweep, wait_for, write_records)


@pytest.mark.parametrize("args, needle", [
    (["run", "--budget", "inf"], "--budget must be finite"),
    (["run", "--budget", "1e400"], "--budget must be finite"),
    (["run", "--budget", "1e308"], "--budget must be at most"),
    (["run", "--budget", "nan"], "--budget must be finite"),
    (["run", "--seeds", "1000000000000"], "--seeds must be at most"),
    (["run", "--seeds", "1.5"], "--seeds must be a positive integer"),
    (["run", "--threads", "0"], "--threads must be positive"),
    (["run", "--target", "-1"], "--target must be positive"),
    (["data", "oscillator", "--seed", "-1", "--out", "x.npz"], "--seed must be non-negative"),
    (["data", "oscillator", "--noise", "inf", "--out", "x.npz"], "--noise must be finite"),
    (["data", "oscillator,lorenz", "--out", "x.npz"], "give one system"),
    (["study", "horizon,order"], "give one study"),
    (["gate", "a", "b", "--factor", "inf"], "--factor must be finite"),
])
def test_bad_numbers_and_names(args, needle):
    one_line_exit_2(run_cli(*args), needle)


@pytest.mark.parametrize("line, needle", [
    ('budget_s = "fast"', "budget_s must be a positive number"),
    ("seeds = 1.5", "seeds must be a positive integer"),
    ("budget_s = -1", "budget_s must be a positive number"),
    ('targets = {oscillator = "tight"}', "target for oscillator must be a positive number"),
    ('systems = "oscillator"', "systems must be a list of names"),
    ("cadence = {first = -1.0}", "cadence.first"),
    ("noise = inf", "noise non-negative"),
    ("bogus = 1", "broken preset"),
])
def test_broken_preset_values(tmp_path, line, needle):
    keys = {"systems": '["oscillator"]', "trainers": '["spectral"]', "regimes": '["dense"]', "seeds": "1",
            "budget_s": "1"}
    key = line.split(" =")[0]
    text = "\n".join(f"{k} = {v}" for k, v in keys.items() if k != key) + "\n" + line + "\n"
    (tmp_path / "p.toml").write_text(text)
    one_line_exit_2(run_cli("run", "--preset", tmp_path / "p.toml", "--out", tmp_path / "out"), needle)
    assert not (tmp_path / "out").exists()


def _bad(record, **changes):
    """The record's JSON object with `changes`: what a damaged file holds."""
    return {**record.to_dict(), **changes}


BAD_RECORDS = {
    "curve strings": dict(curve=[["a", "b", "c"]]),
    "times_to_targets strings": dict(times_to_targets={"0.01": "soon"}),
    "rollout shapes": dict(test_rollout={"t": [0, 1, 2], "truth": [[1.0], [2.0]], "pred": None}),
    "rollout widths": dict(test_rollout={"t": [0, 1], "truth": [[1.0], [2.0]], "pred": [[1.0, 2.0], [1.0, 2.0]]}),
    "study without variable": dict(study={"name": "horizon", "value": 3, "series": "x"}),
    "study string value": dict(study={"name": "horizon", "variable": "n", "value": "big", "series": "x"}),
    "budget string": dict(config={"budget_s": "ten"}),
}


@pytest.mark.parametrize("case", BAD_RECORDS)
def test_report_and_gate_skip_a_half_valid_record_with_a_warning(tmp_path, case):
    write_records(tmp_path / "a", sweep())
    save(tmp_path / "a" / "runs" / "bad.json", _bad(make_record(seed=7), **BAD_RECORDS[case]))
    proc = run_cli("report", tmp_path / "a", "--out", tmp_path / "out")
    assert proc.returncode == 0 and "bad.json" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    write_records(tmp_path / "b", sweep())
    proc = run_cli("gate", tmp_path / "b", tmp_path / "a")
    assert "bad.json" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_record_nested_deep_is_skipped(tmp_path):
    write_records(tmp_path, sweep())
    (tmp_path / "runs" / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    proc = run_cli("report", tmp_path, "--out", tmp_path / "out")
    assert proc.returncode == 0 and "deep.json" in proc.stderr and "Traceback" not in proc.stderr


def test_temporary_files_are_never_read_as_records(tmp_path):
    write_records(tmp_path, sweep())
    save(tmp_path / "runs" / "x.json", make_record(seed=9))
    (tmp_path / "runs" / "x.json").rename(tmp_path / "runs" / ".tmp-abc.json")  # killed between flush and rename
    records, warnings = load_dir(tmp_path)
    assert len(records) == len(sweep()) and not warnings


def test_tune_with_an_unwritable_settings_file_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    t0 = time.perf_counter()
    proc = run_cli("tune", "--systems", "oscillator", "--trainers", "spectral", "--out", tmp_path / "t",
                   "--settings", blocker / "tuned.toml")
    one_line_exit_2(proc, "cannot write the tuned settings")
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").rglob("*.json"))
    assert time.perf_counter() - t0 < 60


@pytest.mark.slow
def test_a_field_that_diverges_at_once_is_recorded_diverged_quickly(tmp_path):
    (tmp_path / "p.toml").write_text('systems = ["oscillator"]\ntrainers = ["backprop-dopri5"]\nregimes = ["dense"]\n'
                                     'seeds = 1\nbudget_s = 2\n[settings.oscillator.backprop-dopri5]\nlr = 1e6\n')
    t0 = time.perf_counter()
    proc = run_cli("run", "--preset", tmp_path / "p.toml", "--threads", "1", "--out", tmp_path / "o", "--no-report")
    assert proc.returncode == 0, proc.stderr
    [record] = [load(p) for p in (tmp_path / "o" / "runs").glob("*.json")]
    assert record.status == "diverged" and "too stiff" in record.error
    assert time.perf_counter() - t0 < 90  # it was a 123 s 'timeout' with 0 iterations


def test_a_dataset_is_never_written_with_non_finite_values(tmp_path):
    from specbench.core.errors import UsageError
    from specbench.registries import get_system
    from specbench.systems.datasets import generate

    with pytest.raises(UsageError, match="cannot be integrated"):
        generate(get_system("lotka-volterra", a=1e300), "sparse")
    with pytest.raises(UsageError, match="noise must be finite"):
        generate(get_system("oscillator"), "sparse", noise=math.inf)
    assert math.isfinite(generate(get_system("oscillator"), "sparse").train.sum())
    proc = run_cli("data", "oscillator", "--out", tmp_path / "x" / "d.npz")
    assert proc.returncode == 0 and not list((tmp_path / "x").glob(".tmp-*"))


SWEEP = ["run", "--systems", "oscillator", "--trainers", "spectral,backprop-rk4", "--threads", "1", "--no-report"]


@pytest.mark.slow
def test_rerunning_a_directory_with_another_budget_is_refused(tmp_path):
    assert run_cli(*SWEEP, "--trainers", "spectral", "--budget", "0.2", "--out", tmp_path).returncode == 0
    [path] = (tmp_path / "runs").glob("*.json")
    before = path.read_bytes()
    proc = run_cli(*SWEEP, "--trainers", "spectral", "--budget", "0.1", "--out", tmp_path)
    one_line_exit_2(proc, "--budget 0.2 there, 0.1 here")
    assert path.read_bytes() == before  # nothing replaced
    proc = run_cli(*SWEEP, "--trainers", "spectral", "--budget", "0.1", "--out", tmp_path, "--replace")
    assert proc.returncode == 0 and json.loads(path.read_text())["config"]["budget_s"] == 0.1


@pytest.mark.slow
def test_a_second_sweep_on_the_same_out_is_refused(tmp_path):
    first = start_cli(*SWEEP, "--budget", "3", "--out", tmp_path)
    try:
        assert wait_for(lambda: (tmp_path / ".lock").exists() and "pid" in (tmp_path / ".lock").read_text())
        second = run_cli(*SWEEP, "--budget", "3", "--out", tmp_path)
        one_line_exit_2(second, f"another sweep (pid {first.pid} on")
    finally:
        first.kill()
        first.wait()


@pytest.mark.slow
def test_sigterm_ends_the_sweep_cleanly_and_resume_completes_it(tmp_path):
    proc = start_cli(*SWEEP, "--budget", "0.5", "--out", tmp_path)
    assert wait_for(lambda: processes(b"specbench.running.worker", parent=proc.pid)), "no run process started"
    runs = processes(b"specbench.running.worker", parent=proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "stopped by SIGTERM" in stderr and "Traceback" not in stderr, stderr
    assert all(gone(pid) for pid in runs), "orphan run"
    assert not list((tmp_path / "runs").glob(".tmp-*"))
    done = run_cli(*SWEEP, "--budget", "0.5", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    records, warnings = load_dir(tmp_path)
    assert not warnings and sorted(r.trainer for r in records) == ["backprop-rk4", "spectral"]


def test_report_refuses_seeds_of_one_group_with_different_settings(tmp_path):
    recs = sweep()
    recs[1] = replace(recs[1], config={**recs[1].config, "budget_s": 5.0})
    write_records(tmp_path, recs)
    one_line_exit_2(run_cli("report", tmp_path, "--out", tmp_path / "out"), "mix settings (budget_s 10.0 and 5.0)")


# ---- reliability, round two (issue 24): each case failed before its fix ----------------------------------------

def test_a_sweep_in_which_no_run_is_ok_reports_so_and_exits_0(tmp_path):
    save(tmp_path / "runs" / "a.json", make_record(status="diverged"))
    save(tmp_path / "runs" / "b.json", make_record(trainer="backprop-rk4", status="error"))
    proc = run_cli("report", tmp_path, "--out", tmp_path / "out")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    text = (tmp_path / "out" / "report.md").read_text()
    assert "**No run was ok** (1 diverged, 1 error)" in text and "| diverged |" in text


def test_a_plugin_system_without_states_is_refused_before_any_training(tmp_path):
    plugin = tmp_path / "flat.py"
    plugin.write_text("from dataclasses import dataclass\nfrom specbench.systems.base import System, regimes\n\n"
                      "@dataclass\nclass Flat(System):\n    name: str = 'flat'\n    dim: int = 0\n"
                      "    regimes: dict = regimes(11, 5)\n\n    @property\n    def params(self):\n"
                      "        return {}\n\n    def f(self, x, xp):\n        return x\n\n"
                      "    def sample_initial(self, rng, n):\n        return rng.standard_normal((n, 0))\n\n"
                      "SYSTEMS = {'flat': Flat}\n")
    for args in (["run", "--systems", "flat", "--no-report", "--out", tmp_path / "o"], ["data", "flat"]):
        proc = run_cli(*args[:1], "--plugin", plugin, *args[1:], *(["--out", tmp_path / "d.npz"] if
                                                                    args[0] == "data" else []))
        one_line_exit_2(proc, "has dim = 0")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("damage, needle", [
    (lambda ref: ref["values"]["oscillator"].__setitem__("spectral", "fast"), "should be an object of measures"),
    (lambda ref: ref["values"].__setitem__("oscillator", [1]), "should be an object of trainers"),
    (lambda ref: ref["settings"].__setitem__("iterations", "30"), "should be a positive integer"),
    (lambda ref: ref["values"]["oscillator"]["spectral"].__setitem__("held_bytes", -4), "should be a number >= 0"),
])
def test_a_work_reference_with_values_of_the_wrong_type_is_refused(tmp_path, damage, needle):
    ref = json.loads((ROOT / "results" / "work" / "reference.json").read_text())
    damage(ref)
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    one_line_exit_2(run_cli("work", "--systems", "oscillator", "--trainers", "spectral", "--check",
                            tmp_path / "ref.json"), needle)


VERDICT_MOVERS = {  # each was loaded, and could move a verdict
    "negative seconds and memory": (dict(train_seconds=-5.0, peak_memory_bytes=-10), "'train_seconds'"),
    "infinite test MSE": (dict(test_mse=math.inf), "'test_mse'"),
    "negative infinite time": (dict(time_to_target_s=-math.inf), "'time_to_target_s'"),
    "unknown trainer": (dict(trainer="nobody"), "unknown trainer 'nobody'"),
    "unknown study": (dict(study={"name": "fame", "variable": "n", "value": 1, "series": "spectral"}),
                      "unknown study 'fame'"),
}


@pytest.mark.parametrize("case", VERDICT_MOVERS)
def test_a_record_that_could_move_a_verdict_is_left_out_with_a_warning(tmp_path, case):
    changes, needle = VERDICT_MOVERS[case]
    write_records(tmp_path / "a", sweep())
    # JSON as Python writes it (Infinity), which a hand-edited or foreign file may hold
    (tmp_path / "a" / "runs" / "bad.json").write_text(json.dumps(_bad(make_record(seed=7), **changes)))
    proc = run_cli("report", tmp_path / "a", "--out", tmp_path / "out")
    assert proc.returncode == 0 and "bad.json" in proc.stderr and needle in proc.stderr, proc.stderr
    assert "seed 7" not in (tmp_path / "out" / "report.md").read_text()


def test_the_same_run_under_two_file_names_is_counted_once(tmp_path):
    write_records(tmp_path, sweep())
    [first] = (tmp_path / "runs").glob("oscillator__spectral__dense__seed0.json")
    (tmp_path / "runs" / "copy-of-seed0.json").write_text(first.read_text())
    records, warnings = load_dir(tmp_path)
    assert len(records) == len(sweep()) and len(warnings) == 1 and "the same run as" in warnings[0]


def test_gate_refuses_a_baseline_it_cannot_read_whole(tmp_path):
    write_records(tmp_path / "base", sweep())
    write_records(tmp_path / "cand", sweep())
    path = next((tmp_path / "base" / "runs").glob("*backprop-rk4*seed0.json"))
    path.write_text(path.read_text()[:100])  # truncated
    one_line_exit_2(run_cli("gate", tmp_path / "base", tmp_path / "cand"), "cannot gate on")
    nan = next((tmp_path / "cand" / "runs").glob("*adjoint-dopri5*seed1.json"))
    nan.write_text(nan.read_text().replace('"test_mse": 0.01', '"test_mse": NaN'))
    write_records(tmp_path / "base", sweep())
    one_line_exit_2(run_cli("gate", tmp_path / "base", tmp_path / "cand"), "'test_mse'")


def test_a_cache_file_with_the_right_key_and_wrong_values_is_not_trusted(tmp_path):
    import numpy as np

    from specbench.registries import get_system
    from specbench.systems.datasets import ARRAYS, make_dataset

    system = get_system("oscillator")
    truth = make_dataset(system, "dense", cache_dir=tmp_path)
    [path] = tmp_path.glob("*.npz")
    with np.load(path) as f:
        content = {k: f[k] for k in f.files}
    content.update({name: content[name] * 1.5 for name in ARRAYS})
    np.savez(path, **content)
    again = make_dataset(system, "dense", cache_dir=tmp_path)
    assert np.array_equal(again.train, truth.train) and np.array_equal(again.test, truth.test)


def test_a_name_given_twice_is_one_job():
    from dataclasses import replace as with_

    from specbench.cli import build_parser
    from specbench.running.presets import load_preset
    from specbench.running.sweeps import plan

    args = build_parser().parse_args(["run", "--systems", "oscillator,oscillator", "--trainers", "spectral,spectral"])
    assert args.systems == ["oscillator"] and args.trainers == ["spectral"]
    assert len(plan(with_(load_preset("quick"), systems=args.systems, trainers=args.trainers), threads=1)) == 1


@pytest.mark.parametrize("args", [["run", "--out", ""], ["data", "oscillator", "--out", ""],
                                  ["report", ""], ["tune", "--settings", " "]])
def test_an_empty_path_is_refused(tmp_path, args):
    proc = run_cli(*args, cwd=tmp_path)
    one_line_exit_2(proc, "an empty path")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_cache_variable_means_the_default_cache(tmp_path, monkeypatch):
    from specbench.systems.datasets import default_cache_dir

    monkeypatch.setenv("SPECBENCH_CACHE", "")
    assert default_cache_dir() == Path.home() / ".cache" / "specbench"


@pytest.mark.slow
def test_a_full_disk_names_the_file_and_keeps_the_finished_run(tmp_path, monkeypatch, capsys):
    import errno

    from specbench.running import sweeps
    from specbench.running.job import make_job

    written = []

    def full(path, record):
        if "specbench-unsaved" in str(path):
            written.append(path)
            return save(path, record)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(sweeps, "write", full)
    monkeypatch.setattr(sweeps, "unsaved_dir", lambda: tmp_path / "tmp" / "specbench-unsaved")
    job = make_job("oscillator", "spectral", "dense", 0, budget_s=0.1, threads=1)
    with pytest.raises(OSError) as exc:
        sweeps.run_sweep([job], tmp_path / "out")
    assert exc.value.filename == str(tmp_path / "out" / "runs" / job.name)
    assert written and load(written[0]).job_key == job.key()
    assert str(written[0]) in capsys.readouterr().err


def test_a_broken_settings_file_is_refused_before_any_tuning(tmp_path):
    (tmp_path / "tuned.toml").write_text("x = [")
    t0 = time.perf_counter()
    one_line_exit_2(run_cli("tune", "--systems", "oscillator", "--trainers", "spectral", "--settings",
                            tmp_path / "tuned.toml", "--out", tmp_path / "t"), "cannot read")
    assert not (tmp_path / "t").exists() and time.perf_counter() - t0 < 60


def test_more_threads_than_cores_is_said(tmp_path):
    from specbench.core.defaults import cores

    (tmp_path / "t.toml").write_text("x = [")  # refused before any run, after the options are read
    proc = run_cli("tune", "--systems", "oscillator", "--trainers", "spectral", "--settings", tmp_path / "t.toml",
                   "--threads", str(cores() + 1), "--out", tmp_path / "o")
    assert f"--threads {cores() + 1} is more than this machine's {cores()} cores" in proc.stderr


@pytest.mark.parametrize("args", [["data", "oscillator", "--out", "{file}/x.npz"],
                                  ["tune", "--systems", "oscillator", "--settings", "{file}/t.toml"]])
def test_a_path_below_a_file_is_not_a_directory(tmp_path, args):
    (tmp_path / "file").write_text("")
    one_line_exit_2(run_cli(*[a.format(file=tmp_path / "file") for a in args]), "Not a directory")


def test_a_name_too_long_to_read_is_not_a_directory_of_records(tmp_path):
    one_line_exit_2(run_cli("report", tmp_path / ("a" * 300)), "is not a directory of run records")


def test_records_and_reports_are_readable_by_colleagues(tmp_path):
    import os
    import stat

    write_records(tmp_path, sweep())
    assert run_cli("report", tmp_path).returncode == 0
    mask = os.umask(0)
    os.umask(mask)
    for path in [*(tmp_path / "runs").glob("*.json"), tmp_path / "report.md", tmp_path / "report.html"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
