"""Learning f(x, u) from outputs alone: a linear driven system x' = A x + B u with a zero-order-hold input, seen
through its first state at irregular times, its second state hidden. On the true field (and the true hidden
states), every trainer that declares inputs, hidden states and irregular times has losses at its solver's
tolerance (the spectral residual at round-off), each gives its estimate of every training trajectory's initial
state, and the common metric's free-run simulation from it is the data (on the test trajectories, from the hidden
initial states its fit estimates). The spectral trainer's Gauss-Newton c-steps, with the true field, recover the
hidden state; with both states measured its Picard c-steps reach the truth as before."""
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from scipy.linalg import expm
from torch import nn

from specbench.numerics import metric
from specbench.numerics.simulate import make_rows
from specbench.registries import TRAINERS, get_trainer
from specbench.systems.base import Regime, System
from specbench.systems.datasets import Trajectory, measured
from specbench.systems.measurements import hold_input
from specbench.trainers.base import cannot_use

A = np.array([[0.0, 1.0], [-2.0, -0.3]])
B = np.array([[0.0], [1.0]])
TS = 0.5  # the input's sample interval


@dataclass
class LinearDriven(System):
    name: str = "linear-driven"
    dim: int = 2
    regimes: dict = field(default_factory=lambda: {"dense": Regime(3, 1, 31)})
    model: dict = field(default_factory=lambda: {"width": 8, "depth": 1})

    @property
    def params(self):
        return {}


class TrueDriven(nn.Module):
    """x' = A x + B u in the VectorField calling convention (t, x, u); a parameter that does nothing, so that an
    optimiser has one."""

    def __init__(self):
        super().__init__()
        self.register_buffer("A", torch.as_tensor(A, dtype=torch.float32))
        self.register_buffer("B", torch.as_tensor(B, dtype=torch.float32))
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, t, x, u=None):
        return x @ self.A.T + u @ self.B.T + 0.0 * self.unused


def exact(x0, t_u, u, t):
    """The closed-form solution at times t (in [t_u[0], t_u[-1]]) from x0 at t_u[0], u held from each sample: on
    each interval x(s) = e^{As} x + A^-1 (e^{As} - I) B u."""
    def advance(x, s, v):
        E = expm(A * s)
        return E @ x + np.linalg.solve(A, (E - np.eye(2)) @ B @ v)
    out, x, k0 = [], np.asarray(x0, float), 0
    for ti in t:
        while k0 + 1 < len(t_u) and t_u[k0 + 1] <= ti:
            x = advance(x, t_u[k0 + 1] - t_u[k0], u[k0])
            k0 += 1
        out.append(advance(x, ti - t_u[k0], u[k0]))
    return np.array(out)


def driven_data(counts=(17, 31, 23), seed=0):
    """Trajectories of `counts` irregular observation times on [0, 6] (the last in the test split), and their true
    states (traj list of (n, 2))."""
    rng = np.random.default_rng(seed)
    runs, states = [], []
    for n in counts:
        t = np.sort(np.concatenate([[0.0, 6.0], rng.uniform(0.05, 5.95, n - 2)]))
        t_u = np.arange(0.0, 6.0 + TS / 2, TS)
        u = rng.normal(size=(len(t_u), 1))
        x = exact(rng.normal(size=2), t_u, u, t)
        runs.append(Trajectory(t, x[:, :1], t_u, u))
        states.append(x)
    return measured(LinearDriven(), runs[:-1], runs[-1:], outputs=(0,), hold="zoh"), states


CAPABLE = sorted(n for n, c in TRAINERS.items() if {"inputs", "hidden", "irregular"} <= c.learns_from)
SOLVERS = [n for n in CAPABLE if TRAINERS[n].solves_ode]
TIGHT = {"lr": 0.0, "rtol": 1e-6, "atol": 1e-7, "steps_per_obs": 16}


def initial(states) -> np.ndarray:
    """The true initial state of each training trajectory, (traj, 2)."""
    return np.stack([x[0] for x in states[:-1]])


def test_the_solvers_multiple_shooting_and_spectral_learn_from_inputs_hidden_states_and_irregular_times():
    assert set(CAPABLE) == {"backprop-rk4", "backprop-dopri5", "adjoint-dopri5", "torchode-dopri5",
                            "multiple-shooting", "spectral"}
    data, _ = driven_data()
    for name in ("spectral-2stage", "vf-node", "torchode-adjoint"):
        assert "cannot learn from" in cannot_use(get_trainer(name), data)
    assert get_trainer("spectral").learns_from == {"inputs", "hidden", "irregular"}


@pytest.mark.parametrize("name", SOLVERS)
def test_on_the_true_field_every_capable_solvers_loss_vanishes(name):
    data, states = driven_data()
    settings = {k: v for k, v in TIGHT.items() if k in get_trainer(name).defaults}
    trainer = get_trainer(name)(data.system, data, settings)
    trainer.model = TrueDriven()  # lr 0: the optimiser leaves the learned states where the test puts them
    if getattr(trainer, "driven", None) is not None:  # torchode's term holds the field it was built with
        trainer.driven.model = trainer.model
    if name == "multiple-shooting":  # every shooting state at the true state of its segment's start
        with torch.no_grad():
            trainer.states.copy_(torch.as_tensor(np.stack([states[b][s] for b, s, _ in trainer.pieces])))
        misfit, gap = trainer.objective(trainer.states)
        assert misfit.item() < 1e-9 and gap.item() < 1e-9
    else:  # the hidden initial values at the truth: every step simulates every whole trajectory from them
        with torch.no_grad():
            trainer.initial_hidden.copy_(torch.as_tensor(initial(states)[:, 1:]))
        # torchode is not told where the held input jumps: its error control finds them, to 1e-4 of the outputs
        assert trainer.step() < (1e-8 if name.startswith("torchode") else 1e-9)
    # its estimate of each training trajectory's initial state: its first segment's, or its first outputs and
    # learned hidden values
    np.testing.assert_allclose(trainer.initial_states(), initial(states), rtol=1e-6, atol=1e-7)
    if name != "multiple-shooting":  # and away from the truth it is not (the loss sees the hidden states)
        with torch.no_grad():
            trainer.initial_hidden.add_(0.5)
        assert trainer.step() > 1e-4


def test_the_common_metric_simulates_the_training_data_from_the_trainers_initial_states():
    """No fit: the hidden components of the trainer's estimate start each simulation, and the outputs start at
    their first sample whatever the estimate says of them."""
    data, states = driven_data()
    model, calls = TrueDriven(), []
    model.register_forward_hook(lambda *_: calls.append(1))  # the metric's float64 copy keeps the hook
    assert metric.train_metric(model, data, initial(states) + [0.3, 0.0]) < 1e-10
    # each dopri5 step that ends at a jump of the held input reads the sample before it and is accepted: the two
    # trajectories (13 jumps, 46 observation times) in under 1,500 evaluations of the field (4,634 when the input's
    # times were compared in float32 and those steps were rejected until tiny)
    assert len(calls) < 1500
    assert metric.train_metric(model, data, initial(states) + [0.0, 0.1]) > 1e-4


def test_the_common_metric_fits_the_hidden_initial_state_of_each_test_trajectory():
    data, _ = driven_data()
    # the hidden initial states are a 5-iteration fit (metric.FIT_ITERATIONS): the outputs to about 1e-4 of their std
    mse, nmse, pred = metric.test_errors(TrueDriven(), data)
    assert nmse < 1e-8 and len(pred) == 1 and pred[0].shape == (23, 1)
    rmse, r2 = metric.output_fit(np.concatenate(pred)[None], data.trajectories("test")[0].y[None])
    assert rmse < 1e-4 and r2 > 1 - 1e-8


def test_rows_hold_the_input_on_their_own_clock_and_read_the_sample_before_a_jump():
    data, _ = driven_data()
    runs = data.trajectories("train")
    rows = make_rows(runs, [(0, 3, 5), (1, 0, 4)], "zoh")
    r = runs[0]
    start = r.t[3]
    assert rows.tau[0, 0] == 0 and torch.allclose(rows.tau[0], torch.as_tensor(r.t[3:8] - start))
    k = int(np.searchsorted(r.t_u, start, side="right") - 1)  # the sample in force at the row's start
    jump = float(r.t_u[k + 1] - start)
    before = torch.nextafter(torch.tensor(jump, dtype=torch.float32), torch.tensor(0.0))
    assert rows.signal(before)[0, 0].item() == pytest.approx(r.u[k, 0])
    assert rows.signal(jump)[0, 0].item() == pytest.approx(r.u[k + 1, 0])
    # torchdiffeq's float64 times: a step that ends at the jump evaluates one float64 ulp before it
    just_before = torch.nextafter(torch.tensor(jump, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64))
    assert rows.signal(just_before)[0, 0].item() == pytest.approx(r.u[k, 0])


def spectral_on_the_truth(hidden: bool, settings=None):
    """The spectral trainer on the driven data, its second state hidden or (hidden=False) measured too, with the true
    field, its mesh on the input's samples (12 elements of 0.5 on [0, 6]: a held input is constant on each); the
    exact states at its nodes (traj, nodes, 2), and the exact input in each element (traj, E)."""
    data, states = driven_data()
    if not hidden:
        runs = [Trajectory(r.t, x, r.t_u, r.u) for r, x in zip(data.trajectories("train"), states)]
        data = measured(data.system, runs, data.trajectories("test"), hold="zoh")
    assert data.needs == {"inputs", "irregular", *(["hidden"] if hidden else [])}
    trainer = get_trainer("spectral")(data.system, data, {"E": 12, "p": 10, "lr": 0.0, **(settings or {})})
    assert trainer.linearised == hidden  # the Gauss-Newton c-step where a state is hidden, Picard's where none is
    trainer.model = TrueDriven()
    runs = data.trajectories("train")
    truth = [exact(x[0], r.t_u, r.u, m.times) for x, m, r in zip(states, trainer.meshes, runs)]
    held = [hold_input(r.t_u, r.u, m.times[m.element_nodes].mean(1), "zoh")[:, 0] for m, r in zip(trainer.meshes, runs)]
    return trainer, np.stack(truth), np.stack(held)


@pytest.mark.parametrize("hidden", [True, False])
def test_the_spectral_residual_and_data_term_vanish_on_the_true_solution_with_the_true_field(hidden):
    trainer, truth, held = spectral_on_the_truth(hidden)
    # float64: the residual of the exact nodal values at every element node, D per trajectory, u held in the element
    x = np.stack([truth[b][m.element_nodes] for b, m in enumerate(trainer.meshes)])  # (traj, E, p+1, 2)
    D = np.stack([m.local_derivative for m in trainer.meshes])
    r = np.einsum("bij,bejs->beis", D, x) - (x @ A.T + held[..., None, None] * B[:, 0])
    assert np.abs(r).max() < 1e-9 * np.abs(x).max()
    # the trainer's own: its input at the nodes is the held input, and its (float32) residual and data terms vanish
    np.testing.assert_allclose(trainer.u_nodes[..., 0].numpy(), np.repeat(held[..., None], 11, -1), rtol=1e-6)
    trainer.c = torch.as_tensor(truth, dtype=torch.float32)
    at_truth = trainer.theta_loss()[0].item()
    assert trainer.data_loss().item() < 1e-12
    trainer.c = trainer.c + 1e-3 * torch.randn_like(trainer.c)
    assert at_truth < 1e-9 and at_truth < 1e-4 * trainer.theta_loss()[0].item()


@pytest.mark.parametrize("hidden", [True, False])
def test_the_spectral_c_steps_reach_the_true_trajectories_from_irregular_driven_data_and_the_true_field(hidden):
    """With the second state hidden, the Gauss-Newton c-steps find it: only through the first state's equation
    (x1' = x2) and the data on x1; the Picard c-step, which freezes f at the old c, could not (its error grew
    without bound)."""
    trainer, truth, _ = spectral_on_the_truth(hidden)
    assert np.abs(trainer.c.double().numpy() - truth).max() > 0.1  # the least-squares start is far from it
    for _ in range(200):
        trainer.coefficient_sweep()
    assert np.abs(trainer.c.double().numpy() - truth).max() < 1e-5
    # the trainer's estimate of each training trajectory's initial state, hidden component included
    np.testing.assert_allclose(trainer.initial_states(), truth[:, 0], atol=1e-5)


def test_the_gauss_newton_c_step_zeroes_the_gradient_of_its_linearised_objective():
    """After a linearised c-step from a network that is not the truth, the gradient with respect to c of data +
    rho * dyn + the proximal term, with f_theta replaced by its linearisation at the old c, vanishes to round-off
    (float64). The objective is written here from each mesh's dense P, G and W and torch.func.jvp of the network,
    apart from the trainer's code; mu is in the units of the normal equations (the objective's, state by state,
    times N std_s^2, N = observations * outputs)."""
    data, _ = driven_data()
    trainer = get_trainer("spectral")(data.system, data, {"E": 6, "p": 5, "rho": 0.3, "prox": 0.1})
    for _ in range(3):
        trainer.step()  # a network that is not the initial one, a c that is not the initial fit
    trainer.model.double()
    trainer.c, trainer.u_nodes = trainer.c.double(), trainer.u_nodes.double()
    runs, meshes = data.trajectories("train"), trainer.meshes
    std, dstd = (torch.as_tensor(trainer.scales[k]) for k in ("std", "deriv_std"))
    n_obs, dim, rho = sum(len(r.t) for r in runs), 2, trainer.config["rho"]
    c_old = trainer.c.clone()

    def objective(c):
        total = (trainer.mu / (n_obs * std ** 2) * (c - c_old) ** 2).sum()
        for b, (m, r) in enumerate(zip(meshes, runs)):
            P, G, S, w = (torch.as_tensor(a) for a in (m.interpolation(r.t), m.derivative, m.gather, m.quadrature))
            total = total + ((((P @ c[b])[:, :1] - torch.as_tensor(r.y)) / std[:1]) ** 2).sum() / n_obs
            u = trainer.u_nodes[b].reshape(len(w), -1)
            f, change = torch.func.jvp(lambda x: trainer.model(None, x, u), (S @ c_old[b],), (S @ (c[b] - c_old[b]),))
            total = total + rho * (w[:, None] * ((G @ c[b] - f - change) / dstd) ** 2).sum() / (
                len(runs) * (r.t[-1] - r.t[0]) * dim)
        return total

    def gradient(c):
        c = c.clone().requires_grad_()
        return torch.autograd.grad(objective(c), c)[0]

    c_new = trainer.linearised_step()
    assert c_new.dtype == torch.float64 and not torch.equal(c_new, c_old)
    assert gradient(c_new).norm() < 1e-9 * gradient(c_old).norm()
