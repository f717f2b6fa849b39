"""The built-in measured benchmarks (cascaded tanks, EMPS) and the field's figures of merit."""
import numpy as np
import pytest
from scipy.io import loadmat

from specbench.numerics.metric import output_fit
from specbench.registries import equation_systems, get_system
from specbench.running.protocol import Job, run_job
from specbench.systems.datasets import make_dataset
from specbench.systems.measured import DATA
from tests.helpers import run_cli


def test_cascaded_tanks_is_the_lower_level_driven_by_a_held_pump_voltage_every_4_s():
    s = get_system("cascaded-tanks")
    d = make_dataset(s)
    assert s.kind == "measured" and "cascaded-tanks" not in equation_systems()
    assert d.train.shape == d.test.shape == (1, 1024, 1) and d.hold == "zoh" and s.dim == 2
    np.testing.assert_array_equal(np.diff(d.t), 4.0)
    assert d.needs == {"inputs", "hidden"}
    raw = np.genfromtxt(DATA / "cascaded-tanks" / "dataBenchmark.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(d.test[0, :, 0], raw["yVal"])
    np.testing.assert_array_equal(d.trajectories("train")[0].u[:, 0], raw["uEst"])


def test_emps_is_position_driven_by_force_with_the_test_pulses_decimated_by_5():
    d = make_dataset(get_system("emps"))
    assert d.train.shape == d.test.shape == (1, 4968, 1)
    np.testing.assert_allclose(np.diff(d.t), 0.005, rtol=1e-6)
    raw = loadmat(DATA / "emps" / "DATA_EMPS_PULSES.mat")
    force = raw["vir"][::5, 0] * raw["gtau"][0, 0] + raw["pulses_N"][::5, 0]
    np.testing.assert_allclose(d.trajectories("test")[0].u[:, 0], force[:4968])
    np.testing.assert_array_equal(d.test[0, :, 0], raw["qm"][::5, 0][:4968])
    assert (raw["pulses_N"][::5] != 0).any()  # the pulses survive the decimation: the test input is not vir*gtau


def test_list_says_the_benchmarks_are_measured():
    proc = run_cli("list")
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert " measured " in lines["cascaded-tanks"] and " measured " in lines["emps"]
    assert " equations " in lines["lorenz"]


@pytest.mark.parametrize("system", ["cascaded-tanks", "emps"])
def test_no_trainer_runs_a_benchmark_it_cannot_learn_from(system):
    record = run_job(Job(system=system, trainer="spectral-2stage", regime="dense", seed=0, budget_s=1.0, target=1e-2,
                         config={}))
    assert record.status == "n/a" and "hidden states or inputs" in record.error


def test_rmse_is_in_the_outputs_units_and_r2_is_one_for_a_perfect_fit_and_zero_for_the_mean():
    y = np.random.default_rng(0).normal(3.0, 2.0, size=(2, 50, 1))
    assert output_fit(y, y) == (0.0, 1.0)
    rmse, r2 = output_fit(y + 0.5, y)
    assert rmse == pytest.approx(0.5)
    assert output_fit(np.full_like(y, y.mean()), y)[1] == pytest.approx(0.0, abs=1e-12)
    assert output_fit(None, y) == (None, None)
