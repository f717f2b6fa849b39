"""The torchode baselines solve what torchdiffeq solves: closed-form solutions, gradients, failures."""
import numpy as np
import pytest
import torch
from torchdiffeq import odeint

from specbench.core.errors import Diverged
from specbench.registries import TRAINERS
from tests.helpers import dataset

TORCHODE = ["torchode-dopri5", "torchode-adjoint"]


def linear_trainer(name, system, data, config):
    """The trainer with a one-layer network set to the oscillator's linear field dx/dt = A x, exactly."""
    trainer = TRAINERS[name](system, data, {**config, "model": {"depth": 0}})
    model = trainer.model
    A = torch.as_tensor(system.f(np.eye(system.dim), np), dtype=torch.float32).T  # row i of f(I) is A e_i
    [layer] = model.net
    with torch.no_grad():  # deriv_std * (W (x - mean) / std + b) = A x
        layer.weight.copy_(A * model.std[None, :] / model.deriv_std[:, None])
        layer.bias.copy_(A @ model.mean / model.deriv_std)
    return trainer


@pytest.mark.parametrize("name", TORCHODE)
def test_torchode_solve_of_the_linear_field_matches_the_closed_form(name):
    system, data = dataset("oscillator")
    n_obs = data.train.shape[1]
    trainer = linear_trainer(name, system, data, {"segment_length": n_obs})
    x0 = trainer.y[:, 0]  # whole trajectories: (traj, state)
    with torch.no_grad():
        pred = trainer.rollout(x0).numpy()  # (traj, obs, state)
    exact = np.stack([system.exact(data.t - data.t[0], x) for x in x0.numpy()])
    assert pred.shape == exact.shape
    # float32 states, rtol 1e-5 and atol 1e-6 over 100 observation intervals: a global error of a few 1e-5
    assert np.abs(pred - exact).max() < 1e-4 * np.abs(exact).max()


@pytest.mark.parametrize("name", TORCHODE)
def test_torchode_gradient_equals_torchdiffeq_gradient_float64(name):
    system, data = dataset("lotka-volterra")
    trainer = TRAINERS[name](system, data, {"rtol": 1e-10, "atol": 1e-10, "segment_length": 30})
    model = trainer.model.double()
    trainer.t_seg = trainer.t_seg.double()
    x0 = torch.as_tensor(data.train[:4, 0])
    target = torch.as_tensor(data.train[:4, :30])  # (batch, seg, state)

    def gradient(backward, pred):
        model.zero_grad()
        backward(((pred - target) ** 2).mean())
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    g = gradient(trainer.backward, trainer.rollout(x0))
    reference = gradient(torch.Tensor.backward, odeint(model, x0, trainer.t_seg, method="dopri5", rtol=1e-10,
                                                       atol=1e-10).transpose(0, 1))
    rel = (g - reference).norm() / reference.norm()
    assert rel < 1e-4


def test_a_failed_backward_solve_of_the_adjoint_is_reported_as_diverged():
    """JointBacksolveAdjoint reports no status for its backward solves; the trainer reads their step counts."""
    system, data = dataset("oscillator")
    trainer = TRAINERS["torchode-adjoint"](system, data, {"batch_size": 4, "segment_length": 10})
    trainer.step()  # the forward and backward solves succeed as configured
    trainer.solver.backward_loop.max_steps = 1  # each backward interval takes at least two steps
    with pytest.raises(Diverged, match="backward solve reached max_steps"):
        trainer.step()
