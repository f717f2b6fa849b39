import math

import pytest

import specbench.tune as tune_module
from specbench.presets import read_toml
from specbench.tune import TUNING_SEED, grid, score, tune, write_tuned
from tests.records import make_record, replace


def record(final: float | None, ttt: float | None, target: float = 1e-2):
    return replace(make_record(ttt=ttt, target=target), final_train_loss=final)


def test_a_point_that_keeps_the_target_on_more_seeds_beats_a_faster_one_that_misses_it():
    steady = [record(5e-3, 6.0), record(4e-3, 7.0), record(6e-3, 8.0)]
    knife_edge = [record(5e-3, 2.0), record(2e-2, None), record(4e-3, 3.0)]  # fast on two seeds, lost on one
    assert score(steady) < score(knife_edge)
    assert score(knife_edge) == (1, 3.0, 5e-3)


def test_medians_decide_among_points_that_keep_the_target_and_missing_values_count_as_never():
    assert score([record(5e-3, 6.0), record(4e-3, 2.0), record(6e-3, 3.0)]) == (0, 3.0, 5e-3)
    assert score([record(None, None), record(0.5, None)]) == (2, math.inf, math.inf)
    assert score([record(0.2, None)]) < score([record(0.3, None)])  # none reaches it: the lower final metric


# tune()'s choice among hand-made tuning records: run_jobs is replaced by a table of outcomes per grid point and
# seed, so the winner each table must give is known.
TRAINER, SEEDS = "backprop-rk4", 3
NEVER = [(None, 0.5)] * SEEDS  # (time to target, final metric) per seed: a point that reaches nothing


def tune_on(monkeypatch, tmp_path, outcomes: list[list[tuple]]) -> dict:
    """The settings tune() chooses for (oscillator, TRAINER) when grid point i has outcomes[i] (per seed), and
    any further point reaches nothing; read back from the file write_tuned writes."""
    points = grid(TRAINER)
    assert len(points) >= len(outcomes)
    table = {tuple(p.items()): o for p, o in zip(points, outcomes)}

    def run_jobs(placed, **kwargs):
        out = []
        for job, _ in placed:
            ttt, final = table.get(tuple(job.config.items()), NEVER)[job.seed - TUNING_SEED]
            out.append(replace(make_record(trainer=TRAINER, seed=job.seed, ttt=ttt, target=1e-2),
                               final_train_loss=final, config=dict(job.config)))
        return out

    monkeypatch.setattr(tune_module, "run_jobs", run_jobs)
    path = tmp_path / "tuned.toml"
    write_tuned(tune(["oscillator"], [TRAINER], 1.0, tmp_path, 1, path, seeds=SEEDS), path)
    return read_toml(path)["oscillator"][TRAINER]


def point(i: int) -> dict:
    return grid(TRAINER)[i]


def chosen(settings: dict) -> dict:
    return {k: settings[k] for k in point(0)}


def test_tune_picks_the_point_with_the_fewest_misses_then_the_lowest_median_time(monkeypatch, tmp_path):
    """Point 0 is fastest but misses the target on one seed; point 1's median time (2 s) beats point 2's (3 s)
    although its mean (18 s) does not: point 1 wins, with its medians written beside it."""
    settings = tune_on(monkeypatch, tmp_path, [
        [(1.0, 5e-3), (None, 2e-2), (1.0, 5e-3)],
        [(2.0, 6e-3), (2.0, 4e-3), (50.0, 9e-3)],
        [(3.0, 5e-3), (3.0, 5e-3), (3.0, 5e-3)],
    ])
    assert chosen(settings) == point(1)
    assert settings["tuned_time_to_target_s"] == 2.0 and settings["tuned_final_metric"] == 6e-3
    assert settings["tuned_budget_s"] == 1.0 and settings["tuned_seeds"] == SEEDS


def test_tune_breaks_a_tie_in_time_by_the_median_final_metric_then_by_grid_order(monkeypatch, tmp_path):
    same_time = [(2.0, 8e-3)] * SEEDS
    settings = tune_on(monkeypatch, tmp_path, [same_time, [(2.0, 4e-3)] * SEEDS, same_time])
    assert chosen(settings) == point(1) and settings["tuned_final_metric"] == 4e-3
    # a full tie: the first of the tied points in the order the trainer's grid declares them
    assert chosen(tune_on(monkeypatch, tmp_path, [NEVER, same_time, same_time])) == point(1)


def test_tune_when_no_point_reaches_the_target(monkeypatch, tmp_path):
    """No point keeps the target on any seed: the lowest median final metric wins (a diverged run, no final
    metric, counts as infinite), and its time to target is written as -1."""
    settings = tune_on(monkeypatch, tmp_path, [
        [(None, 0.3), (None, 0.2), (None, 0.1)],
        [(None, 0.05), (None, None), (None, None)],
        [(None, 0.15), (None, 0.15), (None, 0.9)],
    ])
    assert chosen(settings) == point(2)
    assert settings["tuned_time_to_target_s"] == -1.0 and settings["tuned_final_metric"] == 0.15


@pytest.mark.parametrize("values", [
    {"lr": 3e-3, "segment_length": 40, "elements_per_step": "all", "tuned_time_to_target_s": -1.0,
     "tuned_final_metric": float("inf"), "tuned_on": "2025-01-31"},
    {"update_coefficients": False, "adjoint": True},
    {"method": 'say "dopri5"', "path": "C:\\runs\\tuned", "note": "it's"},
], ids=["numbers-and-plain-strings", "booleans", "quotes-and-backslashes"])
def test_tuned_settings_file_round_trips(tmp_path, values):
    """What write_tuned writes reads back (with the TOML reader presets use) as the settings it was given."""
    settings = {"oscillator": {"spectral": values, "backprop-rk4": {"lr": 1e-2}},
                "lotka-volterra": {"spectral": {"rho": 0.3}}}
    path = tmp_path / "tuned.toml"
    write_tuned(settings, path)
    assert read_toml(path) == settings
