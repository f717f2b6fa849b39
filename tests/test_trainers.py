import numpy as np
import pytest
import torch
from torchdiffeq import odeint, odeint_adjoint

from specbench.errors import Diverged
from specbench.models import build_model, data_scales
from specbench.trainers import TRAINERS
from specbench.trainers.spectral import Spectral
from tests.helpers import TrueField, dataset

# Small, quick settings: a test checks behaviour, not speed.
FAST = {name: {"batch_size": 8, "segment_length": 10}
        for name in ["backprop-rk4", "backprop-dopri5", "adjoint-dopri5", "torchode-dopri5", "torchode-adjoint"]}
ADJOINTS = ["adjoint-dopri5", "torchode-adjoint"]  # slower steps: fewer of them in the tests


def test_adjoint_gradient_equals_direct_gradient_float64():
    system, data = dataset("lotka-volterra")
    model = build_model(2, data_scales(data.t, data.train), {"width": 16, "depth": 2}, seed=0).double()
    x0 = torch.as_tensor(data.train[:4, 0])
    t = torch.as_tensor(data.t[:30])
    target = torch.as_tensor(data.train[:4, :30]).transpose(0, 1)
    grads = []
    for solve in (odeint, odeint_adjoint):
        model.zero_grad()
        pred = solve(model, x0, t, method="dopri5", rtol=1e-10, atol=1e-10)
        ((pred - target) ** 2).mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    rel = (grads[0] - grads[1]).norm() / grads[0].norm()
    assert rel < 1e-4


@pytest.mark.parametrize("E, p", [(3, 4), (7, 6)])
def test_spectral_applies_the_mesh_operators_exactly(E, p):
    """The trainer's gathers and element-local products are the mesh's dense P, S, G and G' (float64 check)."""
    system, data = dataset("lotka-volterra")
    trainer = Spectral(system, data, {"E": E, "p": p})
    mesh = trainer.mesh
    c = trainer.c.double()
    trainer.c, trainer.D = c, torch.as_tensor(mesh.local_derivative)
    trainer.obs_w = torch.as_tensor(mesh.locate(data.t)[1])[None, :, :, None]
    x, dxdt = trainer.nodes()
    assert torch.allclose(x, torch.as_tensor(mesh.gather) @ c, atol=1e-12)
    assert torch.allclose(dxdt, torch.as_tensor(mesh.derivative) @ c, atol=1e-10)
    assert torch.allclose(trainer.at_observations(), torch.as_tensor(mesh.interpolation(data.t)) @ c, atol=1e-12)
    v = torch.randn(c.shape[0], mesh.E * (p + 1), c.shape[-1], dtype=torch.float64)
    local = torch.einsum("ij,beis->bejs", trainer.D, v.view(c.shape[0], E, p + 1, -1))
    assert torch.allclose(trainer.scatter(local, trainer.idx),
                          (torch.as_tensor(mesh.derivative).T @ v).permute(2, 0, 1), atol=1e-10)


def test_spectral_residual_vanishes_on_the_true_solution_with_the_true_field():
    system, data = dataset("oscillator")
    trainer = Spectral(system, data, {"E": 10, "p": 12})
    trainer.model = TrueField(system)
    mesh = trainer.mesh
    exact = np.stack([system.exact(mesh.times, x0) for x0 in data.train_clean[:, 0]])  # (traj, nodes, state)
    # float64 numerics: the residual is at round-off level
    G, S = mesh.derivative, mesh.gather
    r = np.einsum("mn,bns->bms", G, exact) - system.f(np.einsum("mn,bns->bms", S, exact), np)
    assert np.abs(r).max() < 1e-9 * np.abs(exact).max()
    # the trainer's own (float32) residual loss, relative to that of the least-squares start perturbed by 1e-3
    trainer.c = torch.as_tensor(exact, dtype=torch.float32)
    x, dxdt = trainer.nodes()
    at_truth = trainer.residual_loss(x, dxdt).item()
    trainer.c = trainer.c + 1e-3 * torch.randn_like(trainer.c)
    x, dxdt = trainer.nodes()
    assert at_truth < 1e-9 and at_truth < 1e-4 * trainer.residual_loss(x, dxdt).item()


def test_initial_fit_reproduces_noiseless_data():
    system, data = dataset("oscillator")
    trainer = Spectral(system, data, {})
    # normalised MSE: RMS error under 0.1% of each state's spread (the smoothing term biases it a little)
    assert trainer.data_loss().item() < 1e-6
    unsmoothed = Spectral(system, data, {"init_smoothing": 0.0})
    assert unsmoothed.data_loss().item() <= trainer.data_loss().item()


def test_every_trainer_starts_from_the_same_weights_for_a_seed():
    system, data = dataset("oscillator")
    weights = [torch.cat([p.detach().flatten() for p in cls(system, data, FAST.get(n), seed=3).model.parameters()])
               for n, cls in TRAINERS.items()]
    for w in weights[1:]:
        assert torch.equal(w, weights[0])
    other = TRAINERS["spectral"](system, data, {}, seed=4).model
    assert not torch.equal(torch.cat([p.detach().flatten() for p in other.parameters()]), weights[0])


@pytest.mark.parametrize("name", TRAINERS)
def test_each_trainer_lowers_its_own_loss_on_oscillator(name):
    system, data = dataset("oscillator")
    trainer = TRAINERS[name](system, data, FAST.get(name), seed=0)
    steps = 60 if name in ADJOINTS else 200
    losses = [trainer.step() for _ in range(steps)]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert trainer.iteration == steps


def test_unknown_setting_is_an_error_not_ignored():
    from specbench.errors import UsageError

    system, data = dataset("oscillator")
    with pytest.raises(UsageError, match="learning_rate"):
        TRAINERS["spectral"](system, data, {"learning_rate": 1.0})


@pytest.mark.parametrize("name", TRAINERS)
def test_blow_up_is_reported_as_diverged(name):
    """A field that has blown up (here: infinite output scale) makes step() raise Diverged, for every trainer.
    (A huge learning rate is no such test: tanh saturates and the spectral loss stays finite.)"""
    system, data = dataset("oscillator")
    trainer = TRAINERS[name](system, data, {**FAST.get(name, {}), "max_num_steps": 50}
                             if name.endswith("dopri5") else FAST.get(name), seed=0)
    with torch.no_grad():
        trainer.model.deriv_std.fill_(float("inf"))
    with pytest.raises(Diverged):
        trainer.step()


@pytest.mark.parametrize("name", ["backprop-dopri5", "adjoint-dopri5", "torchode-dopri5", "torchode-adjoint"])
def test_solver_failure_is_reported_as_diverged_not_hung(name):
    system, data = dataset("oscillator")
    trainer = TRAINERS[name](system, data, {**FAST[name], "max_num_steps": 5}, seed=0)
    with torch.no_grad():  # a stiff field: dopri5 needs far more than 5 steps
        trainer.model.deriv_std *= 1e4
    with pytest.raises(Diverged, match="solver failed"):
        trainer.step()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", TRAINERS)
def test_trainers_step_on_cuda(name):
    system, data = dataset("oscillator")
    trainer = TRAINERS[name](system, data, FAST.get(name), seed=0, device="cuda")
    losses = [trainer.step() for _ in range(20)]
    assert np.isfinite(losses).all() and next(trainer.model.parameters()).is_cuda


def test_spectral_step_has_no_python_loop_over_time_elements_or_trajectories():
    """The number of Python function calls in a step is the same whatever E, p, the trajectory count or the
    state size: every step is batched over trajectories x elements x nodes."""
    import cProfile
    import pstats

    counts = set()
    for name, regime, params, cfg in [("network", "dense", {"n": 4}, {"E": 3}),
                                      ("network", "dense", {"n": 4}, {"E": 12, "p": 4}),
                                      ("network", "sparse", {"n": 4}, {}),
                                      ("network", "dense", {"n": 8}, {})]:
        system, data = dataset(name, regime, **params)
        trainer = Spectral(system, data, cfg)
        trainer.step()
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(3):
            trainer.step()
        profile.disable()
        counts.add(pstats.Stats(profile).total_calls)
    assert len(counts) == 1, counts
