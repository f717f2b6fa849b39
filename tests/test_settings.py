"""Trainer settings declared on the trainer (specbench.trainers.settings): defaults and grids derived from the
declaration, unknown and invalid settings refused when a job is made, the plain-dict path plugins may take, and
the rules by which tuning extends a grid past an edge."""
import pytest

from specbench.core.errors import UsageError
from specbench.registries import TRAINERS
from specbench.running.job import make_job
from specbench.running.presets import load_preset
from specbench.trainers.settings import Joint, Setting, Shape, by_name, from_plain
from tests.helpers import one_line_exit_2, run_cli


@pytest.mark.parametrize("trainer", TRAINERS.names())
def test_an_unknown_or_out_of_range_setting_is_refused_with_one_line_when_the_job_is_made(trainer):
    """make_job refuses, before any run exists, a setting the trainer does not declare (naming the valid ones) and
    a value outside a declared range (naming the range)."""
    with pytest.raises(UsageError) as unknown:
        make_job("oscillator", trainer, "dense", 0, budget_s=1.0, config={"learning_rate": 1e-2})
    message = str(unknown.value)
    assert "'learning_rate'" in message and "valid: " in message and "lr" in message and "\n" not in message
    with pytest.raises(UsageError) as out_of_range:
        make_job("oscillator", trainer, "dense", 0, budget_s=1.0, config={"lr": -1.0})
    message = str(out_of_range.value)
    assert message == f"setting lr of {trainer} (oscillator / dense) must be a number >= 0, got -1"
    assert "\n" not in message


@pytest.mark.parametrize("trainer", TRAINERS.names())
def test_defaults_and_tuning_grid_are_derived_from_the_declaration(trainer):
    """One source: every default and grid value is one the setting accepts, every setting has a line of meaning,
    and the grid's tables (tolerances) name declared settings."""
    cls = TRAINERS[trainer]
    settings = by_name(cls.settings)
    assert cls.defaults == {name: s.default for name, s in settings.items()}
    assert all(s.meaning for s in cls.settings)
    for name, values in cls.tuning_grid.items():
        for value in values:
            table = value if isinstance(value, dict) else {name: value}
            assert all(settings[k].problem(v) is None for k, v in table.items()), (name, value)


@pytest.mark.parametrize("value", [-5, 0])
def test_a_preset_with_a_segment_length_below_two_is_exit_2_before_any_training(tmp_path, value):
    """Once silently clamped to 2 by the solver baselines: now one line and exit status 2, no record written."""
    (tmp_path / "p.toml").write_text('systems = ["oscillator"]\ntrainers = ["backprop-rk4"]\nregimes = ["dense"]\n'
                                     f'seeds = 1\nbudget_s = 1\n[settings.oscillator.backprop-rk4]\n'
                                     f'segment_length = {value}\n')
    proc = run_cli("run", "--preset", tmp_path / "p.toml", "--out", tmp_path / "out", "--threads", "1")
    one_line_exit_2(proc, "specbench: error: setting segment_length of backprop-rk4 (oscillator / dense) must be an "
                    f"integer >= 2 (used up to the observations per trajectory), got {value}", alone=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value, got", [(1, "1"), (2.5, "2.5"), (True, "true"), ("20", "'20'")])
def test_a_segment_length_is_an_integer_of_at_least_two(value, got):
    with pytest.raises(UsageError, match=f"must be an integer >= 2 .*, got {got}$"):
        make_job("oscillator", "backprop-dopri5", "sparse", 0, budget_s=1.0, config={"segment_length": value})
    assert make_job("oscillator", "backprop-dopri5", "sparse", 0, budget_s=1.0,
                    config={"segment_length": 2}).config["segment_length"] == 2


def test_the_two_stage_ablation_carries_no_setting_of_the_c_step_it_does_not_take():
    """rho, prox and sweep act in the c-step alone, which spectral-2stage does not take: it does not declare them
    (a preset that sets one is refused), and it cannot be switched into the full method either."""
    ablation, full = TRAINERS["spectral-2stage"], TRAINERS["spectral"]
    assert {"rho", "prox", "sweep"} <= set(full.defaults) and not {"rho", "prox", "sweep"} & set(ablation.defaults)
    assert "p" in ablation.tuning_grid and "rho" not in ablation.tuning_grid
    for trainer, flip in (("spectral-2stage", True), ("spectral", False)):
        with pytest.raises(UsageError, match="update_coefficients"):
            make_job("oscillator", trainer, "dense", 0, budget_s=1.0, config={"update_coefficients": flip})
    with pytest.raises(UsageError, match="unknown setting 'rho' for spectral-2stage"):
        make_job("oscillator", "spectral-2stage", "dense", 0, budget_s=1.0, config={"rho": 0.1})


def test_every_job_of_the_reference_preset_is_valid_with_its_tuned_settings():
    """The package's tuned settings and the paper preset make valid jobs for every cell and trainer."""
    from specbench.running.sweeps import plan

    jobs = plan(load_preset("paper"))
    assert len(jobs) == 450 and all(j.config for j in jobs)


def test_a_plugin_may_declare_plain_dicts_and_keeps_its_parents_types():
    """The example plugin's trainer gives plain `defaults` and `tuning_grid` dicts: the settings its parent declares
    keep their types and ranges (a segment of 0 observations is refused), only the grid's settings are tuned, and a
    new setting takes its type from its default."""
    from specbench.registries import load_plugin
    from specbench.trainers.solver import TorchdiffeqTrainer

    plugin = load_plugin("examples/pendulum_plugin.py")
    euler = plugin.BackpropEuler
    assert euler.defaults["method"] == "euler" and euler.defaults["steps_per_obs"] == 2
    assert euler.tuning_grid == {"lr": [1e-2, 3e-2], "segment_length": [10]}
    assert by_name(euler.settings)["segment_length"].problem(0) is not None
    declared = from_plain(TorchdiffeqTrainer.settings, {**TorchdiffeqTrainer.defaults, "weight_decay": 0.0},
                          {"weight_decay": [0.0, 1e-4, 1e-3]})
    decay = by_name(declared)["weight_decay"]
    assert (decay.type, decay.grid, decay.scale) == (float, (0.0, 1e-4, 1e-3), "log")
    assert decay.problem("none") is not None and decay.problem(1) is None
    with pytest.raises(TypeError, match="not a setting"):
        from_plain(TorchdiffeqTrainer.settings, None, {"weight_decay": [0.0]})


def test_a_declaration_that_cannot_work_fails_when_its_class_is_made():
    from specbench.trainers.base import Trainer

    with pytest.raises(TypeError, match="'lr': -1"):
        type("Bad", (Trainer,), {"settings": (Setting("lr", -1.0, "Adam learning rate", low=0.0),)})
    with pytest.raises(TypeError, match="not on its ladder"):
        type("Bad", (Trainer,), {"settings": (Setting("n", 3, "n", int, grid=(3,), scale="ladder", ladder=(1, 2)),)})
    with pytest.raises(TypeError, match="not both"):
        type("Bad", (Trainer,), {"settings": (), "defaults": {"lr": 1e-2}})
    joint = Joint("tolerances", ("rtol", "atol"), "a pair", grid=((1e-3, 1e-4),), ladder=((1e-3, 1e-4),))
    with pytest.raises(TypeError, match="not declared"):
        type("Bad", (Trainer,), {"settings": (joint,)})


def declared(trainer: str, name: str):
    return next(s for s in TRAINERS[trainer].settings if s.name == name)


def test_a_log_scale_steps_by_the_ratio_of_the_outermost_values_within_the_range():
    lr = declared("backprop-dopri5", "lr")
    assert lr.past([3e-3, 1e-2, 3e-2], up=True) == 0.09 and lr.past([3e-3, 1e-2, 3e-2], up=False) == 9e-4
    assert lr.past([0.27, 0.81], up=True) == 1.0  # 2.43 is past lr's range: the step stops at its end
    assert lr.past([0.81, 1.0], up=True) is None  # on the end: no further
    segment = declared("backprop-dopri5", "segment_length")
    steps, grid = [], [5, 10, 20]
    while (new := segment.past(grid, up=False)) is not None:
        steps.append(new)
        grid.append(new)
    assert steps == [3, 2]  # 2.5 -> 3, 1.8 -> 2, then a segment of 2 observations is the end
    assert segment.past([10, 20, 40], up=True, shape=Shape(4, 41)) == 41  # at most the observations
    assert segment.past([10, 20, 40, 41], up=True, shape=Shape(4, 41)) is None


def test_a_linear_scale_steps_by_the_difference():
    p = declared("spectral", "p")
    assert p.past([4, 6, 8], up=True) == 10 and p.past([4, 6, 8], up=False) == 2
    assert p.past([2, 4, 6], up=False) == 1 and p.past([1, 2, 4], up=False) is None


def test_a_ladder_extends_to_its_next_value_that_runs_as_a_new_one():
    tolerances = declared("backprop-dopri5", "tolerances")
    grid = [t for t in TRAINERS["backprop-dopri5"].tuning_grid["tolerances"]]
    assert tolerances.past(grid, up=True) == {"rtol": 1e-7, "atol": 1e-8}
    assert tolerances.past(grid, up=False) == {"rtol": 1e-1, "atol": 1e-2}
    assert tolerances.past(grid + [{"rtol": 1e-1, "atol": 1e-2}], up=False) is None  # rtol up to 1e-1
    batch = declared("spectral", "elements_per_step")
    assert batch.past([32, "all"], up=False) == 16 and batch.past([32, "all"], up=True) is None
    # oscillator/sparse at the defaults: 4 trajectories of 2 elements, 8 in all: 32 runs as "all", the first rung
    # below that is a mini-batch is 4
    assert batch.runs_as(32, Shape(4, 21), TRAINERS["spectral"].defaults) == "all"
    assert batch.within(Shape(4, 21), TRAINERS["spectral"].defaults) == (4, "all")


def test_zero_in_a_grid_is_no_step_on_a_log_scale_and_an_ordinary_one_on_a_linear_scale():
    """weight_decay (0.0, 1e-4, 1e-3) from a plain grid is on a log scale, whose end 0 has no step past it (not a
    step to 0.0 again); lr_exp (-1, 0, 1) is on a linear one: 1 -> 2, no division by the 0 beside it."""
    from specbench.trainers.vf_node import VFNode

    plain = from_plain(VFNode.settings, {**VFNode.defaults, "weight_decay": 0.0, "lr_exp": 0.0},
                       {"weight_decay": [0.0, 1e-4, 1e-3], "lr_exp": [-1.0, 0.0, 1.0]})
    decay, exponent = by_name(plain)["weight_decay"], by_name(plain)["lr_exp"]
    assert decay.past([0.0, 1e-4, 1e-3], up=False) is None and decay.past([0.0, 1e-4, 1e-3], up=True) == 1e-2
    assert exponent.past([-1.0, 0.0, 1.0], up=True) == 2.0 and exponent.past([-1.0, 0.0, 1.0], up=False) == -2.0
    assert exponent.past([0.0, 1.0], up=False) == -1.0 and decay.past([1e-4, 0.0], up=False) is None
