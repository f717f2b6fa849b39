import math
from dataclasses import asdict

import pytest

import specbench.running.tuning as tune_module
from specbench.core.records import load
from specbench.registries import TRAINERS, get_trainer
from specbench.running.presets import budget_s_for, load_preset, read_toml, tuned_settings
from specbench.running.tuning import (HOW, POINTS, Cell, Score, capable, design, rank, resolution, score,
                                      settings_of, tune, write_tuned)
from specbench.trainers.settings import Shape
from tests.helpers import ROOT, make_record, one_line_exit_2, replace, run_cli



def record(best: float | None, ttt: float | None, target: float = 1e-2, step: float = 0.01):
    """A tuning run: its first crossing `ttt` (the curve evaluated `step` x ttt before it) and the metric of its
    best checkpoint `best` (None: it diverged)."""
    r = make_record(ttt=ttt, target=target, status="ok" if best is not None else "diverged")
    curve = [[0.0, 0, 1.0]] + ([[(1 - step) * ttt, 9, 2 * target], [ttt, 10, target]] if ttt is not None else [])
    return replace(r, curve=curve,
                   best_checkpoint={"seconds": 1.0, "iteration": 10, "metric": best} if best is not None else None)


def best_of(*points: list) -> int:
    """The index of the winner among points, each a list of its runs' records."""
    return rank([score(runs) for runs in points])[0]


def test_a_point_that_reaches_the_target_on_more_seeds_beats_a_faster_one_that_misses_it():
    steady = [record(5e-3, 6.0), record(4e-3, 7.0), record(6e-3, 8.0)]
    knife_edge = [record(5e-3, 2.0), record(2e-2, None), record(4e-3, 3.0)]  # fast on two seeds, lost on one
    assert best_of(knife_edge, steady) == 1
    assert score(knife_edge) == Score(missed=1, time=3.0, resolution=pytest.approx(0.15), metric=5e-3)


def test_medians_decide_among_points_that_reach_the_target_and_missing_values_count_as_never():
    got = score([record(5e-3, 6.0), record(4e-3, 2.0), record(6e-3, 3.0)])
    assert (got.missed, got.time, got.metric) == (0, 3.0, 5e-3)
    assert score([record(None, None), record(0.5, None)]) == Score(2, math.inf, 0.0, math.inf)
    assert best_of([record(0.3, None)], [record(0.2, None)]) == 1  # none reaches it: the lower best metric
    # a run that diverged after its best checkpoint keeps what it reached, as the reference judges it
    got = score([replace(record(5e-3, 2.0), status="diverged")])
    assert (got.missed, got.time, got.metric) == (0, 2.0, 5e-3)


def test_times_within_the_evaluation_resolution_tie_and_the_best_metric_decides():
    """2% faster with a 5x worse metric: within 5% of the time, a tie the better metric wins. 10% faster: faster
    wins. And where the curve's evaluations are sparser than 5% (the crossing 30% after the evaluation before it),
    20% faster is a tie too."""
    good, quick = [record(1e-3, 1.0)], [record(5e-3, 0.98)]
    assert best_of(quick, good) == 1
    assert best_of([record(5e-3, 0.90)], good) == 0
    assert best_of([record(5e-3, 0.8, step=0.3)], good) == 1
    assert resolution(record(1e-3, 2.0, step=0.3)) == pytest.approx(0.6)
    assert resolution(record(1e-3, 2.0, step=0.01)) == pytest.approx(0.1)  # 5% of the time at least


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
def test_every_trainer_runs_as_many_distinct_points_in_every_cell(trainer):
    """In every cell of the reference, POINTS points that run as distinct settings there. Before, a value past a
    limit of the data ran as another (vf-node's K 40 and 80 both ran as K 20 on oscillator/sparse: 11 points):
    now such values leave the cell's grid, which extends from its other edge instead (K 3, 5, 10, 20 there)."""
    from specbench.running.tuning import grids, runs_as, shape_of

    preset = load_preset("paper")
    for system in preset.systems:
        for regime in preset.regimes:
            shape = shape_of(Cell(system, regime, 1.0), preset)
            points = design(trainer, POINTS, shape)
            ran = [settings_of(runs_as(trainer, p, shape)) for p in points]
            assert len({repr(r) for r in ran}) == POINTS, (system, regime)
            assert all(settings_of(p) == r for p, r in zip(points, ran)), (system, regime)  # named as they run
            grid = grids(trainer, shape)
            assert {k: len(v) for k, v in grid.items()} == {k: len(v) for k, v in grids(trainer).items()}
    assert grids("vf-node", shape_of(Cell("oscillator", "sparse", 1.0), preset))["K"] == [3, 5, 10, 20]


@pytest.mark.parametrize("trainer", TRAINERS.names())
def test_every_point_of_every_trainers_design_is_a_valid_config(trainer):
    """Each point's settings (tolerances spread into rtol and atol) are settings the trainer has, with values it
    takes: resolve_config and the schedule check accept them."""
    from specbench.trainers.base import SCHEDULES, resolve_config

    cls = get_trainer(trainer)
    for point in design(trainer):
        config = resolve_config(cls, settings_of(point))
        assert config["schedule"] in SCHEDULES


def test_spectral_searches_the_legendre_order_as_its_ablation_does():
    assert get_trainer("spectral").tuning_grid["p"] == get_trainer("spectral-2stage").tuning_grid["p"] == [4, 6, 8]


# tune() on hand-made outcomes: run_jobs is replaced by a table of each point's first crossing, so the rungs and
# the winner are known. A run of budget b reaches the target when the point's time is <= b.
TRAINER = "vf-node"
B = 9.0


def tune_on(monkeypatch, tmp_path, time_of, trainer=TRAINER, metric_of=None) -> tuple[dict, list]:
    """The entry tune() writes for (oscillator, dense, `trainer`) at budget B when a point (as trainer settings)
    first crosses the target at time_of(settings, seed) (None: never) and its best metric is metric_of(settings,
    seed) (default: 1e-3 x that time, or 0.5), the curve evaluated every 1% of the time before it; and the
    (settings, budget, seed, label) of every run, in order."""
    runs = []
    metric_of = metric_of or (lambda cfg, seed, t: 1e-3 * t if t else 0.5)

    def run_jobs(placed, labels, **kwargs):
        out = []
        for (job, path), what in zip(placed, labels):
            runs.append((dict(job.config), job.budget_s, job.seed, what))
            assert path.parts[-6:-2] == ("oscillator", "dense", trainer, path.parts[-3])
            t = time_of(job.config, job.seed)
            t = t if t is not None and t <= job.budget_s else None
            r = make_record(trainer=trainer, role="rival", seed=job.seed, ttt=t, budget=job.budget_s)
            curve = [[0.0, 0, 1.0]] + ([[0.99 * t, 9, 0.02], [t, 10, 0.009]] if t else [])
            out.append(replace(r, config=dict(job.config), curve=curve, best_checkpoint={
                "seconds": 0.0, "iteration": 1, "metric": metric_of(job.config, job.seed, t)}))
        return out

    monkeypatch.setattr(tune_module, "run_jobs", run_jobs)
    path = tmp_path / "tuned.toml"
    write_tuned(tune([Cell("oscillator", "dense", B)], [trainer], tmp_path, 1, path), path)
    return read_toml(path)["oscillator"]["dense"][trainer], runs


def test_successive_halving_runs_every_point_short_the_best_third_longer_on_two_seeds_and_the_winner_at_b(
        monkeypatch, tmp_path):
    """Times to target (all within B/9) rise with the learning rate's distance from 1e-2 and with K's from 40: 12
    points at B/9, the best 4 at B/3 on two seeds, then the winner (lr 1e-2, K 40, inside both grids: no
    extension) on three seeds at B. Each run's progress line names its point."""
    def time_of(cfg, seed):
        return (0.1 + 0.3 * abs(math.log10(cfg["lr"] / 1e-2)) + 0.05 * abs(math.log2(cfg["K"] / 40))
                + 0.01 * (seed - 100))

    entry, runs = tune_on(monkeypatch, tmp_path, time_of)
    budgets = [b for _, b, _, _ in runs]
    assert budgets == [B / 9] * 12 + [B / 3] * 8 + [B] * 3
    first = design(TRAINER)
    best4 = sorted(first, key=lambda p: time_of(settings_of(p), 100))[:4]
    assert [(c, s) for c, _, s, _ in runs[12:20]] == [(settings_of(p), s) for p in best4 for s in (100, 101)]
    winner = settings_of(best4[0])
    assert [(c, s) for c, _, s, _ in runs[20:]] == [(winner, 100), (winner, 101), (winner, 102)]
    assert all(what == ", ".join(f"{k}={v}" for k, v in c.items()) for c, _, _, what in runs)
    assert {k: entry[k] for k in winner} == winner
    assert entry["tuned_time_to_target_s"] == pytest.approx(time_of(winner, 101))
    assert (entry["tuned_reached"], entry["tuned_budget_s"], entry["tuned_seeds"]) == (3, B, 3)
    assert "tuned_extended" not in entry and "tuned_edge" not in entry


def test_a_winner_on_an_edge_is_extended_until_it_is_inside(monkeypatch, tmp_path):
    """The closer the learning rate to 0.8 the faster (by more than the 5% a tie allows): the winner at B/3 has
    the grid's largest lr, 3e-2, so the grid extends by its log step (x3) to 9e-2, which wins, then 0.27 and 0.81,
    which win too; the next step, 2.43, is past the range tuning keeps a learning rate in and stops at its end,
    1.0, which loses: 0.81 is inside, three steps on, and goes on to the full budget."""
    def time_of(cfg, seed):
        return 0.05 + 0.5 * abs(math.log10(cfg["lr"] / 0.8)) + (0.0 if cfg["K"] == 20 else 0.5)

    entry, runs = tune_on(monkeypatch, tmp_path, time_of)
    tried = [c["lr"] for c, b, s, _ in runs if b == B / 3 and s == 100 and c["lr"] > 3e-2]
    assert tried == [0.09, 0.27, 0.81, 1.0]
    assert entry["lr"] == 0.81 and entry["K"] == 20
    assert entry["tuned_extended"] == {"lr": 3} and "tuned_edge" not in entry
    assert [b for _, b, _, _ in runs[-3:]] == [B] * 3


def test_a_winner_at_an_end_of_a_settings_range_is_kept_and_marked(monkeypatch, tmp_path):
    """The smaller K the faster, and K's grid (10, 20, 40, 80) extends down by its log step, 5, 2.5 -> 3 (rounded),
    then 1.5 -> 2, then to K's lower end, 1: K = 1 wins and sits on the end of its range, so the entry says so."""
    def time_of(cfg, seed):
        return 0.1 * cfg["K"] + (0.0 if cfg["lr"] == 1e-2 else 0.5)

    entry, runs = tune_on(monkeypatch, tmp_path, time_of)
    assert [c["K"] for c, b, s, _ in runs if b == B / 3 and s == 100 and c["K"] < 10] == [5, 3, 2, 1]
    assert entry["K"] == 1 and entry["tuned_extended"] == {"K": 4} and entry["tuned_edge"] == ["K"]


def test_a_point_2_percent_faster_with_a_5x_worse_metric_loses_to_the_better_metric(monkeypatch, tmp_path):
    """Two points, inside every grid, cross the target 2% apart: within the resolution, a tie, and the 5x better
    metric wins (the old rule took the faster)."""
    def time_of(cfg, seed):
        if (cfg["lr"], cfg["K"]) == (3e-3, 20):
            return 1.0
        return 0.98 if (cfg["lr"], cfg["K"]) == (1e-2, 40) else 2.0

    def metric_of(cfg, seed, t):
        return 5e-3 if (cfg["lr"], cfg["K"]) == (1e-2, 40) else 1e-3

    entry, _ = tune_on(monkeypatch, tmp_path, time_of, metric_of=metric_of)
    assert (entry["lr"], entry["K"]) == (3e-3, 20)


def test_a_point_that_misses_the_target_on_one_of_two_seeds_loses_to_one_that_reaches_it_on_both(
        monkeypatch, tmp_path):
    """At B/3 (two seeds) the fastest point misses the target on seed 101: the point that reaches it on both
    seeds wins, though slower."""
    def time_of(cfg, seed):
        if (cfg["lr"], cfg["K"]) == (1e-2, 40):
            return None if seed == 101 else 0.3
        return 1.0 if (cfg["lr"], cfg["K"]) == (3e-3, 20) else 2.0

    entry, runs = tune_on(monkeypatch, tmp_path, time_of)
    assert {s for c, b, s, _ in runs if b == B / 3 and (c["lr"], c["K"]) == (1e-2, 40)} == {100, 101}
    assert (entry["lr"], entry["K"]) == (3e-3, 20)


@pytest.fixture
def decay_trainer(monkeypatch):
    """A vf-node variant with plain `defaults` and `tuning_grid` dicts holding 0.0: weight_decay (0.0, 1e-4, 1e-3)
    and lr_exp (-1.0, 0.0, 1.0), registered for the test only."""
    from specbench.registries import TRAINERS as registry
    from specbench.trainers.vf_node import VFNode

    cls = type("DecayNode", (VFNode,), {"defaults": {**VFNode.defaults, "weight_decay": 0.0, "lr_exp": 0.0},
                                        "tuning_grid": {"weight_decay": [0.0, 1e-4, 1e-3], "lr_exp": [-1.0, 0.0, 1.0]}})
    monkeypatch.setitem(registry._items, "decay-node", cls)
    return "decay-node"


@pytest.mark.parametrize("best, extended, edge", [
    ((0.0, 0.0), None, ["weight_decay"]),  # 0.0 is as far as a log scale goes: not "extended" to 0.0 again
    ((1e-4, 1.0), None, None),  # 0.0 beside the winner: 1 -> 2 is tried (and loses), no division by zero
    ((1e-4, 2.0), {"lr_exp": 1}, None),  # ... and wins where it is better
    ((1e-2, -2.0), {"weight_decay": 1, "lr_exp": 1}, None),
])
def test_grids_holding_zero(monkeypatch, tmp_path, decay_trainer, best, extended, edge):
    """A winner at 0.0 on a log grid (weight_decay 0.0, 1e-4, 1e-3) is not extended to 0.0 again: it is on the end
    of what the scale reaches, and the entry says so; a linear grid through 0 (lr_exp -1, 0, 1) extends by its step
    without dividing by zero. Times grow by 0.1 s a step of either setting away from `best`."""
    decays = [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]

    def time_of(cfg, seed):
        return 0.1 + 0.1 * (abs(decays.index(cfg["weight_decay"]) - decays.index(best[0]))
                            + abs(cfg["lr_exp"] - best[1]))

    entry, _ = tune_on(monkeypatch, tmp_path, time_of, trainer=decay_trainer)
    assert (entry["weight_decay"], entry["lr_exp"]) == best
    assert entry.get("tuned_extended") == extended and entry.get("tuned_edge") == edge


def test_a_tuning_run_trains_its_point_over_the_defaults_alone(monkeypatch, tmp_path):
    """The job of a point is made by make_job, checked like any job, with the point over the trainer's defaults:
    neither a preset's settings nor an earlier tuning reach it."""
    jobs = []

    def run_jobs(placed, labels, **kwargs):
        jobs.extend(job for job, _ in placed)
        raise KeyboardInterrupt  # enough: the first rung's jobs are made

    monkeypatch.setattr(tune_module, "run_jobs", run_jobs)
    preset = load_preset("paper")
    preset.settings = {"oscillator": {TRAINER: {"K": 7}}}
    with pytest.raises(KeyboardInterrupt):
        tune([Cell("oscillator", "dense", B)], [TRAINER], tmp_path, 1, tmp_path / "t.toml", preset=preset)
    assert [j.config for j in jobs] == [settings_of(p) for p in design(TRAINER, POINTS, Shape(16, 101))]


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


def check_tuned_entries(preset_name: str, root, tuned_budget=None):
    """Every capable trainer of every cell of preset `preset_name` has its own entry in the package's tuned settings,
    chosen by this code's successive halving (tuning.HOW) at the cell's budget (or `tuned_budget`) on three tuning
    seeds, and the winner's three runs at that budget are committed under `root`. Returns the entries checked."""
    preset = load_preset(preset_name)
    tuned = tuned_settings(preset)
    cells = [Cell(system, regime, tuned_budget or budget_s_for(preset, system, regime))
             for system in preset.systems for regime in preset.regimes]
    checked = 0
    for cell, trainer in capable(cells, TRAINERS.names(), preset):
        entry = tuned.get(cell.system, {}).get(cell.regime, {}).get(trainer)
        where = f"{cell.system} / {cell.regime} / {trainer}"
        assert entry, f"no tuned entry for {where}"
        assert (entry["tuned_budget_s"], entry["tuned_seeds"], entry["tuned_by"]) == (cell.budget_s, 3, HOW), where
        settings = {k: v for k, v in entry.items() if not k.startswith("tuned_")}
        assert set(settings) <= set(get_trainer(trainer).defaults), where
        tag = "_".join(f"{k}={v}" for k, v in settings.items())
        point = root / cell.system / cell.regime / trainer / f"{tag}@{cell.budget_s:.4g}s"
        runs = [load(p) for p in (point / "runs").glob("*.json")]
        assert sorted(r.seed for r in runs) == [100, 101, 102], where
        assert all(r.config["budget_s"] == cell.budget_s for r in runs), where
        checked += 1
    return checked


def test_the_reference_runs_on_settings_tuned_for_each_of_its_cells_with_the_evidence_committed():
    """Every system x regime x trainer of the paper preset (round two of the reference) has its own entry, tuned at
    that cell's budget, with its winner's runs committed under results/tuning/reference-2."""
    assert check_tuned_entries("paper", ROOT / "results" / "tuning" / "reference-2") == 90


def test_the_measured_benchmarks_run_on_settings_tuned_for_them_with_the_evidence_committed():
    """Every trainer that can learn the measured benchmarks (hidden states, an input) has its own entry for each,
    tuned at 120 s (the Makefile's MEASURED_TUNING_S), with its winner's runs under results/tuning/measured-2;
    the two that cannot (the two-stage ablation, the weak-form rival) have none."""
    assert check_tuned_entries("measured", ROOT / "results" / "tuning" / "measured-2", tuned_budget=120.0) == 14
    tuned = tuned_settings(load_preset("measured"))
    assert not [(s, t) for s in ("cascaded-tanks", "emps") for t in ("spectral-2stage", "vf-node")
                if tuned.get(s, {}).get("dense", {}).get(t)]


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
    one_line_exit_2(proc, f"specbench: error: cannot write the tuned settings to {read_only_dir / 'tuned.toml'}: ",
                    alone=True)
    assert not (tmp_path / "t").exists()


def test_a_progress_line_names_what_the_run_trained():
    import io

    from specbench.running.executors import Progress

    stream = io.StringIO()
    progress = Progress(2, [(make_record(seed=100), "lr=0.01, K=20")], stream)
    progress.finished(make_record(seed=101), 1, "lr=0.03, K=40")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "oscillator / spectral / dense / seed 100 (lr=0.01, K=20): skipped" in lines[0]
    assert "oscillator / spectral / dense / seed 101 (lr=0.03, K=40): ok" in lines[1]


def test_tune_trains_the_presets_trainers_unless_trainers_are_given(tmp_path, monkeypatch):
    """tune --preset FILE tunes that preset's trainers (not every registered one) on its cells and budget_s;
    --trainers narrows them; with no --preset it says, in one line, that it takes the paper preset."""
    preset = tmp_path / "two.toml"
    preset.write_text('systems = ["oscillator"]\ntrainers = ["spectral", "vf-node"]\nregimes = ["sparse"]\n'
                      'seeds = 1\nbudget_s = 2\n')
    tuned = []
    monkeypatch.setattr(tune_module, "tune", lambda cells, trainers, *args, **kw: tuned.append((cells, trainers)) or {})

    def trainers_tuned(*args) -> tuple[list, list, str]:
        proc = run_cli("tune", *args, "--out", tmp_path / "t")
        assert proc.returncode == 0, proc.stderr
        return *tuned[-1], proc.stderr

    cells, trainers, said = trainers_tuned("--preset", preset)
    assert trainers == ["spectral", "vf-node"] and cells == [Cell("oscillator", "sparse", 2.0)]
    assert "the default" not in said
    assert trainers_tuned("--preset", preset, "--trainers", "vf-node")[1] == ["vf-node"]
    cells, trainers, said = trainers_tuned("--systems", "oscillator", "--regimes", "dense")
    assert trainers == load_preset("paper").trainers and cells == [Cell("oscillator", "dense", 10.0)]
    assert "specbench tune: preset paper (the default; --preset to choose)" in said.splitlines()


def test_a_trainer_that_cannot_learn_from_a_cells_data_is_not_tuned_there_and_tuning_says_why(
        monkeypatch, tmp_path, capsys):
    jobs, factors = [], []

    def run_jobs(placed, labels, timeout_factor, **kwargs):
        jobs.extend(job for job, _ in placed)
        factors.append(timeout_factor)
        raise KeyboardInterrupt  # enough: the first rung's jobs are made

    monkeypatch.setattr(tune_module, "run_jobs", run_jobs)
    with pytest.raises(KeyboardInterrupt):
        tune([Cell("cascaded-tanks", "dense", B)], ["spectral-2stage", "spectral"], tmp_path, 1,
             tmp_path / "t.toml", preset=load_preset("measured"))
    assert {j.trainer for j in jobs} == {"spectral"}
    assert factors == [load_preset("measured").timeout_factor] == [6]  # the preset's run limit, as its sweep's
    assert "cascaded-tanks / dense / spectral-2stage: not tuned: SpectralTwoStage cannot learn from hidden states " \
           "or inputs" in capsys.readouterr().err


def test_the_measured_preset_evaluates_every_tenth_of_the_time_so_far_at_most_every_10_s_and_allows_6x():
    """Its runs' evaluations of stiff learned fields cost up to 2.7x their budget (EMPS): the cadence's gap is
    capped at 10 s (not 2 s) and the run limit is 6x, where the paper preset keeps 2 s and 3x."""
    from specbench.core.defaults import TIMEOUT_FACTOR, Cadence

    measured, paper = load_preset("measured"), load_preset("paper")
    assert measured.cadence == {**asdict(Cadence()), "max_interval": 10.0} and measured.timeout_factor == 6
    assert paper.cadence == asdict(Cadence()) and paper.timeout_factor == TIMEOUT_FACTOR
    assert Cadence(**measured.cadence).next_after(50.0) == 55.0  # 10% of the time so far, under the cap


def test_the_budgets_for_round_two_follow_the_paper_presets_rule_from_the_tuned_times(tmp_path):
    """scripts/budgets_from_tuning.py: 15x the candidate's tuned median time to target, rounded up to 5 s, within
    the preset's 10-45 s; the cap where the candidate did not reach the target; the measured benchmarks' one budget
    checked against 10x."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("budgets", ROOT / "scripts" / "budgets_from_tuning.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert [script.rule_budget(t, 10, 45) for t in (0.3, 1.1, 2.3, 4.4, -1.0, None)] == [10, 20, 35, 45, 45, 45]
    (tmp_path / "t.toml").write_text('[oscillator.dense.spectral]\ntuned_time_to_target_s = 1.1\n'
                                     '[oscillator.sparse.spectral]\ntuned_time_to_target_s = -1.0\n'
                                     '[emps.dense.spectral]\ntuned_time_to_target_s = 2.3\n'
                                     '[cascaded-tanks.dense.spectral]\ntuned_time_to_target_s = 40.0\n')
    out = script.lines(script.read_toml(tmp_path / "t.toml"))
    assert "oscillator = {dense = 20, sparse = 45}  # spectral's tuned median time to target: 1.1 s (dense), " \
           "not reached (sparse)" in out
    assert "lorenz = {dense = 45, sparse = 45}  # spectral's tuned median time to target: not tuned (dense), " \
           "not tuned (sparse)" in out  # no entry: the cap
    assert "#   oscillator dense: budget 10 s, the rule's 20 s: below the rule" in out  # the paper preset's 10 s
    assert "#   network sparse: budget 10 s, the rule's 45 s: below the rule" in out  # not tuned: the cap
    assert "#   lorenz dense: budget 45 s, the rule's 45 s: keeps the rule" in out
    assert "#   emps dense: budget 300 s; 10x is 23 s: the budget keeps the rule" in out
    assert "#   cascaded-tanks dense: budget 300 s; 10x is 400 s: the cap binds" in out
    del (settings := script.read_toml(tmp_path / "t.toml"))["emps"]
    assert "#   emps dense: budget 300 s; not tuned: no entry for it" in script.lines(settings)
    assert script.main([str(tmp_path / "missing.toml")]) == 2
