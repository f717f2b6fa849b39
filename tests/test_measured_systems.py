"""The built-in measured benchmarks (cascaded tanks, EMPS) and the field's figures of merit."""
import numpy as np
import pytest
import torch
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


def test_emps_is_position_driven_by_the_commanded_force_decimated_by_5():
    d = make_dataset(get_system("emps"))
    assert d.train.shape == d.test.shape == (1, 4968, 1)
    np.testing.assert_allclose(np.diff(d.t), 0.005, rtol=1e-6)
    raw = loadmat(DATA / "emps" / "DATA_EMPS_PULSES.mat")
    force = raw["vir"][::5, 0] * raw["gtau"][0, 0]  # the command answers the pulses: they are not added
    np.testing.assert_allclose(d.trajectories("test")[0].u[:, 0], force[:4968])
    np.testing.assert_array_equal(d.test[0, :, 0], raw["qm"][::5, 0][:4968])
    assert (raw["pulses_N"][::5] != 0).any()  # the file has them; the input leaves them out


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


def _field_and_jacobian(system, seed=0):
    from specbench.numerics.vector_field import build_model, general_scales

    s = get_system(system, structure="declared")
    d = make_dataset(s)
    model = build_model(s.dim, general_scales(d), s.model, seed)
    x, u = torch.randn(7, s.dim), torch.randn(7, 1)
    jac = torch.autograd.functional.jacobian(lambda z: model(None, z[:, : s.dim], z[:, s.dim:]).sum(0),
                                             torch.cat([x, u], -1))  # (state, 7, state + input)
    return model, x, u, jac.abs().sum(1) > 0


def test_the_tanks_structure_keeps_the_upper_level_free_of_the_lower_for_every_weight():
    # x0 the lower level (measured), x1 the upper (hidden), u0 the pump: x1' = f1(x1, u), x0' = f0(x0, x1, u)
    model, *_, depends = _field_and_jacobian("cascaded-tanks")
    assert depends.tolist() == [[True, True, True], [False, True, True]]
    with torch.no_grad():  # training moves the weights, never the mask: any weights keep the structure
        for p in model.parameters():
            p.normal_()
    x = torch.randn(5, 2)
    moved = x.clone()
    moved[:, 0] += 3.0
    u = torch.randn(5, 1)
    assert torch.equal(model(None, x, u)[:, 1], model(None, moved, u)[:, 1])


def test_the_emps_structure_makes_the_positions_derivative_the_velocity_itself():
    model, x, u, depends = _field_and_jacobian("emps")
    assert depends.tolist() == [[False, True, False], [False, True, True]]
    assert torch.equal(model(None, x, u)[:, 0], x[:, 1])


@pytest.mark.parametrize("system", ["cascaded-tanks", "emps"])
def test_the_metrics_numpy_field_is_the_structured_field(system):
    from specbench.numerics.metric import numpy_field

    model, x, u, _ = _field_and_jacobian(system)
    fast = numpy_field(model)
    np.testing.assert_allclose(fast(x.double().numpy(), u.double().numpy()), model(None, x, u).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_the_structure_is_a_parameter_the_default_is_the_black_box_and_a_bad_one_is_one_line():
    from specbench.core.errors import UsageError

    assert "structure" not in get_system("cascaded-tanks").model and get_system("emps").params == {}
    assert get_system("emps", structure="declared").params == {"structure": "declared"}
    with pytest.raises(UsageError, match="structure must be 'none' or 'declared'"):
        get_system("emps", structure="grey")
    with pytest.raises(UsageError, match="declares no model structure"):
        get_system("file", structure="declared")


def test_a_structure_that_names_what_the_system_lacks_is_refused():
    from specbench.numerics.vector_field import parse_structure

    with pytest.raises(ValueError, match="'u1' is not one of x0, x1, u0"):
        parse_structure([["x0", "u1"], ["x1"]], 2, 1)
    with pytest.raises(ValueError, match="'=x2' is not '=xJ'"):
        parse_structure(["=x2", ["x1"]], 2, 1)
    with pytest.raises(ValueError, match="1 entries for 2 states"):
        parse_structure([["x0"]], 2, 1)


def test_a_hidden_state_the_structure_calls_a_velocity_is_scaled_like_the_positions_rate_at_any_spacing():
    from dataclasses import dataclass
    from typing import ClassVar

    from specbench.numerics.vector_field import general_scales
    from specbench.systems.datasets import measured
    from specbench.systems.measured import Measured
    from specbench.systems.measurements import Trajectory

    @dataclass
    class Cart(Measured):
        name: str = "cart"
        dim: int = 2
        known_structure: ClassVar[list] = ["=x1", ["x1", "u0"]]

    rng = np.random.default_rng(0)
    runs = []
    for n in (400, 300):  # position 3 + sin(t) at uneven times: velocity cos(t), its rate -sin(t)
        t = np.sort(rng.uniform(0, 20, n))
        runs.append(Trajectory(t, 3 + np.sin(t)[:, None], t, np.zeros((n, 1))))
    scales = general_scales(measured(Cart(structure="declared"), runs, runs[:1], outputs=[0]))
    t = np.linspace(0, 20, 100_001)
    assert scales["mean"][0] == pytest.approx(3, abs=0.1) and scales["std"][0] == pytest.approx(np.sin(t).std(), 0.05)
    assert abs(scales["mean"][1]) < 0.1 and scales["std"][1] == pytest.approx(np.cos(t).std(), rel=0.05)
    assert scales["deriv_std"][1] == pytest.approx(np.sin(t).std(), rel=0.1)
    black_box = general_scales(measured(Cart(), runs, runs[:1], outputs=[0]))
    assert black_box["std"][1] == black_box["std"][0]  # without the structure: an average output's size


def test_spectrals_gauss_newton_jacobian_is_autograds_on_the_emps_structure():
    """The c-step linearises the structured field by forward mode under vmap: the masked layers and the known
    derivative (position' = velocity) give the Jacobian autograd gives, node by node."""
    from specbench.registries import get_trainer

    system = get_system("emps", structure="declared")
    data = make_dataset(system)
    trainer = get_trainer("spectral")(system, data, {"density": 0.05})
    f, jac = trainer.linearisation()
    x = trainer.elements(trainer.c).reshape(-1, 2)[:40]
    u = trainer.inputs().reshape(-1, 1)[:40]
    expected = torch.stack([torch.autograd.functional.jacobian(lambda z: trainer.model(None, z, ui), xi)
                            for xi, ui in zip(x, u)])
    torch.testing.assert_close(jac.reshape(-1, 2, 2)[:40], expected)
    assert (jac[..., 0, :] == torch.tensor([0.0, 1.0])).all()  # d(position')/d(state) = (0, 1) at every node
