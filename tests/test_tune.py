import math
from pathlib import Path

import pytest

import specbench.tune as tune_module
from specbench.presets import budget_for, load_preset, read_toml, tuned_settings
from specbench.plugins import TRAINERS, get_trainer
from specbench.records import load
from specbench.tune import POINTS, Cell, design, past_edges, score, settings_of, tune, write_tuned
from tests.conftest import run_cli
from tests.records import make_record, replace

ROOT = Path(__file__).resolve().parents[1]


def record(best: float | None, ttt: float | None, target: float = 1e-2):
    """A tuning run: its first crossing `ttt` and the metric of its best checkpoint `best` (None: it diverged)."""
    r = make_record(ttt=ttt, target=target, status="ok" if best is not None else "diverged")
    return replace(r, best_checkpoint={"seconds": 1.0, "iteration": 10, "metric": best} if best is not None else None)


def test_a_point_that_reaches_the_target_on_more_seeds_beats_a_faster_one_that_misses_it():
    steady = [record(5e-3, 6.0), record(4e-3, 7.0), record(6e-3, 8.0)]
    knife_edge = [record(5e-3, 2.0), record(2e-2, None), record(4e-3, 3.0)]  # fast on two seeds, lost on one
    assert score(steady) < score(knife_edge)
    assert score(knife_edge) == (1, 3.0, 5e-3)


def test_medians_decide_among_points_that_reach_the_target_and_missing_values_count_as_never():
    assert score([record(5e-3, 6.0), record(4e-3, 2.0), record(6e-3, 3.0)]) == (0, 3.0, 5e-3)
    assert score([record(None, None), record(0.5, None)]) == (2, math.inf, math.inf)
    assert score([record(0.2, None)]) < score([record(0.3, None)])  # none reaches it: the lower best metric
    # a run that diverged after its best checkpoint keeps what it reached, as the reference judges it
    assert score([replace(record(5e-3, 2.0), status="diverged")]) == (0, 2.0, 5e-3)


@pytest.mark.parametrize("trainer", TRAINERS.names())
def test_every_trainer_is_tuned_on_the_same_number_of_distinct_points_each_value_about_equally_often(trainer):
    points = design(trainer)
    axes = get_trainer(trainer).tuning_grid
    assert len(points) == POINTS and len({repr(p) for p in points}) == POINTS
    assert points == design(trainer)  # the same points every time: a resumed tuning runs the same jobs
    for name, values in axes.items():
        counts = [sum(p[name] == v for p in points) for v in values]
        assert min(counts) >= POINTS // len(values) and max(counts) <= -(-POINTS // len(values)), name


@pytest.mark.parametrize("trainer", TRAINERS.names())
def test_every_point_of_every_trainers_design_is_a_valid_config(trainer):
    """Each point's settings (tolerances spread into rtol and atol) are settings the trainer has, with values it
    takes: resolve_config and the schedule check accept them."""
    from specbench.trainers.base import SCHEDULES, resolve_config

    cls = get_trainer(trainer)
    for point in design(trainer):
        config = resolve_config(cls, settings_of(point))
        assert config["schedule"] in SCHEDULES


def test_a_winner_on_the_edge_of_a_numeric_setting_is_tried_one_step_past_it():
    axes = {"lr": [3e-3, 1e-2, 3e-2], "segment_length": [10, 20, 40], "steps_per_obs": [1, 2],
            "schedule": ["constant", "cosine"], "tolerances": [{"rtol": 1e-3}, {"rtol": 1e-5}]}
    edge = {"lr": 3e-2, "segment_length": 10, "steps_per_obs": 1, "schedule": "cosine", "tolerances": {"rtol": 1e-3}}
    assert past_edges(edge, axes) == [("lr", {**edge, "lr": 0.09}), ("segment_length", {**edge, "segment_length": 5})]
    inside = {**edge, "lr": 1e-2, "segment_length": 20}
    assert past_edges(inside, axes) == []  # steps_per_obs 1 -> 0.5 is no setting; strings and tables have no edge


# tune() on hand-made outcomes: run_jobs is replaced by a table of each point's first crossing, so the rungs and
# the winner are known. A run of budget b reaches the target when the point's time is <= b.
TRAINER = "vf-node"
B = 9.0


def tune_on(monkeypatch, tmp_path, time_of) -> tuple[dict, list]:
    """The entry tune() writes for (oscillator, dense, TRAINER) at budget B when a point (as trainer settings)
    first crosses the target at time_of(settings, seed) (None: never) and its best metric is 1e-3 x that time (or
    0.5); and the (settings, budget, seed) of every run, in order."""
    runs = []

    def run_jobs(placed, **kwargs):
        out = []
        for job, path in placed:
            runs.append((dict(job.config), job.budget_s, job.seed))
            assert path.parts[-6:-2] == ("oscillator", "dense", TRAINER, path.parts[-3])
            t = time_of(job.config, job.seed)
            t = t if t is not None and t <= job.budget_s else None
            r = make_record(trainer=TRAINER, role="rival", seed=job.seed, ttt=t, budget=job.budget_s)
            out.append(replace(r, config=dict(job.config),
                               best_checkpoint={"seconds": 0.0, "iteration": 1, "metric": 1e-3 * t if t else 0.5}))
        return out

    monkeypatch.setattr(tune_module, "run_jobs", run_jobs)
    path = tmp_path / "tuned.toml"
    write_tuned(tune([Cell("oscillator", "dense", B)], [TRAINER], tmp_path, 1, path), path)
    return read_toml(path)["oscillator"]["dense"][TRAINER], runs


def test_successive_halving_runs_every_point_short_the_best_third_longer_and_the_winner_on_the_full_budget(
        monkeypatch, tmp_path):
    """Times to target (all within B/9) rise with the learning rate's distance from 1e-2 and with K's from 40: 12
    points at B/9, the best 4 at B/3, then the winner (lr 1e-2, K 40, inside both edges: no extension) on three
    seeds at B."""
    def time_of(cfg, seed):
        return (0.1 + 0.3 * abs(math.log10(cfg["lr"] / 1e-2)) + 0.05 * abs(math.log2(cfg["K"] / 40))
                + 0.01 * (seed - 100))

    entry, runs = tune_on(monkeypatch, tmp_path, time_of)
    budgets = [b for _, b, _ in runs]
    assert budgets == [B / 9] * 12 + [B / 3] * 4 + [B] * 3
    first = design(TRAINER)
    best4 = sorted(first, key=lambda p: time_of(settings_of(p), 100))[:4]
    assert [c for c, _, _ in runs[12:16]] == [settings_of(p) for p in best4]
    winner = settings_of(best4[0])
    assert [(c, s) for c, _, s in runs[16:]] == [(winner, 100), (winner, 101), (winner, 102)]
    assert {k: entry[k] for k in winner} == winner
    assert entry["tuned_time_to_target_s"] == pytest.approx(time_of(winner, 101))
    assert (entry["tuned_reached"], entry["tuned_budget_s"], entry["tuned_seeds"]) == (3, B, 3)
    assert "tuned_extended" not in entry


def test_a_winner_on_an_edge_is_beaten_by_the_point_past_it_when_that_is_better(monkeypatch, tmp_path):
    """The higher the learning rate the faster: the winner at B/3 has the grid's largest lr (3e-2), so 9e-2 is
    tried at B/3, wins, and goes on to the full budget; the entry says which grid was extended."""
    def time_of(cfg, seed):
        return 0.005 / cfg["lr"] + (0.0 if cfg["K"] == 20 else 0.5)

    entry, runs = tune_on(monkeypatch, tmp_path, time_of)
    extension = [c for c, b, _ in runs if b == B / 3 and c["lr"] == 0.09]
    assert extension == [{"lr": 0.09, "K": 20, "schedule": extension[0]["schedule"]}]
    assert entry["lr"] == 0.09 and entry["K"] == 20 and entry["tuned_extended"] == "lr"
    assert [b for _, b, _ in runs[-3:]] == [B] * 3


def test_tune_when_no_point_reaches_the_target(monkeypatch, tmp_path):
    """No point reaches the target: the lowest best metric decides (here all equal: the first in design order),
    and the time to target is written as -1."""
    entry, _ = tune_on(monkeypatch, tmp_path, lambda cfg, seed: None)
    assert entry["tuned_time_to_target_s"] == -1.0 and entry["tuned_reached"] == 0
    assert entry["tuned_best_metric"] == 0.5


@pytest.mark.parametrize("values", [
    {"lr": 3e-3, "segment_length": 40, "elements_per_step": "all", "tuned_time_to_target_s": -1.0,
     "tuned_final_metric": float("inf"), "tuned_on": "2025-01-31"},
    {"update_coefficients": False, "adjoint": True},
    {"method": 'say "dopri5"', "path": "C:\\runs\\tuned", "note": "it's"},
], ids=["numbers-and-plain-strings", "booleans", "quotes-and-backslashes"])
def test_tuned_settings_file_round_trips(tmp_path, values):
    """What write_tuned writes reads back (with the TOML reader presets use) as the settings it was given."""
    settings = {"oscillator": {"dense": {"spectral": values, "backprop-rk4": {"lr": 1e-2}}},
                "lotka-volterra": {"sparse": {"spectral": {"rho": 0.3}}, "spectral": {"rho": 0.1}}}
    path = tmp_path / "tuned.toml"
    write_tuned(settings, path)
    assert read_toml(path) == settings


def test_the_reference_runs_on_settings_tuned_for_each_of_its_cells_with_the_evidence_committed():
    """Every system x regime x trainer of the paper preset (the reference) has its own entry in the package's
    tuned settings, chosen by successive halving at that cell's budget on three tuning seeds, and the winner's
    three runs at that budget are committed under results/tuning/reference."""
    root = ROOT / "results" / "tuning" / "reference"
    preset = load_preset("paper")
    tuned = tuned_settings(preset)
    for system in preset.systems:
        for regime in preset.regimes:
            budget = budget_for(preset, system, regime)
            for trainer in preset.trainers:
                entry = tuned.get(system, {}).get(regime, {}).get(trainer)
                where = f"{system} / {regime} / {trainer}"
                assert entry, f"no tuned entry for {where}"
                how = (entry["tuned_budget_s"], entry["tuned_seeds"], entry["tuned_by"])
                assert how == (budget, 3, tune_module.HOW), where
                settings = {k: v for k, v in entry.items() if not k.startswith("tuned_")}
                assert set(settings) <= set(get_trainer(trainer).defaults), where
                tag = "_".join(f"{k}={v}" for k, v in settings.items())
                point = root / system / regime / trainer / f"{tag}@{budget:.4g}s"
                runs = [load(p) for p in (point / "runs").glob("*.json")]
                assert sorted(r.seed for r in runs) == [100, 101, 102], where
                assert all(r.config["budget_s"] == budget for r in runs), where


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory holding a writable tuned.toml whose entries cannot be created or renamed: mode 0555, or for
    root (whom modes do not stop) the immutable attribute."""
    import os
    import shutil
    import subprocess

    where = tmp_path / "ro"
    where.mkdir()
    (where / "tuned.toml").write_text("")
    root = os.geteuid() == 0
    if root:
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(where)]).returncode:
            pytest.skip("root, and no chattr +i here to make a read-only directory")
    else:
        where.chmod(0o555)
    try:
        yield where
    finally:
        subprocess.run(["chattr", "-i", str(where)]) if root else where.chmod(0o755)


def test_tune_refuses_a_settings_file_in_a_read_only_directory_before_training(tmp_path, read_only_dir):
    """The file itself is writable, but the atomic write at the end needs its directory: one line, exit 2, before
    any run."""
    proc = run_cli("tune", "--systems", "oscillator", "--regimes", "sparse", "--trainers", "vf-node", "--budget",
                   "0.9", "--out", tmp_path / "t", "--settings", read_only_dir / "tuned.toml")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"specbench: error: cannot write the tuned settings to "
                                                   f"{read_only_dir / 'tuned.toml'}: ")
    assert not (tmp_path / "t").exists()


def test_a_progress_line_names_what_the_run_trained():
    import io

    from specbench.executors import Progress

    stream = io.StringIO()
    progress = Progress(2, [(make_record(seed=100), "lr=0.01, K=20")], stream)
    progress.finished(make_record(seed=101), 1, "lr=0.03, K=40")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "oscillator / spectral / dense / seed 100 (lr=0.01, K=20): skipped" in lines[0]
    assert "oscillator / spectral / dense / seed 101 (lr=0.03, K=40): ok" in lines[1]
