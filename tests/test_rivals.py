"""The rivals against truth: VF-NODE's quadrature maps against adaptive quadrature of the same spline and closed
forms, its weak residual of the true field vanishing at the quadrature's order; multiple shooting's segments tiling
each trajectory, its continuity gap vanishing at the solver's order on the true trajectory, and its gradients
against finite differences."""
import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.interpolate import CubicSpline

from specbench.registries import get_system
from specbench.systems.datasets import generate
from specbench.trainers.shooting import MultipleShooting
from specbench.trainers.vf_node import VFNode, sine_test_maps
from tests.helpers import TrueField, dataset


def sine(k: int, t0: float, span: float, derivative: bool = False):
    """phi_k (or phi_k') of VF-NODE, written here apart from the trainer's code."""
    omega = k * np.pi / span
    if derivative:
        return lambda t: np.sqrt(2 / span) * omega * np.cos(omega * (t - t0))
    return lambda t: np.sqrt(2 / span) * np.sin(omega * (t - t0))


@pytest.mark.parametrize("n", [3, 4, 12, 40])
def test_quadrature_maps_equal_adaptive_quadrature_of_the_natural_spline(n):
    """A v and B v are the integrals of phi_k and phi_k' against the natural cubic spline through (t, v), on
    uneven times, for the lowest, a middle and the highest test function: scipy's spline, scipy's quad."""
    rng = np.random.default_rng(n)
    t = np.sort(np.concatenate([[0.3, 3.1], rng.uniform(0.3, 3.1, n - 2)]))
    v = rng.standard_normal(n)
    spline = CubicSpline(t, v, bc_type="natural")
    A, B = sine_test_maps(t, n - 1)
    span = t[-1] - t[0]
    for k in sorted({1, n // 2, n - 1}):
        for maps, g in ((A, sine(k, t[0], span)), (B, sine(k, t[0], span, derivative=True))):
            exact = sum(quad(lambda s: g(s) * spline(s), a, b, epsabs=1e-13, epsrel=1e-12)[0]
                        for a, b in zip(t[:-1], t[1:]))
            assert maps[k - 1] @ v == pytest.approx(exact, rel=1e-11, abs=1e-12)


def test_quadrature_maps_are_exact_on_lines():
    """The natural spline reproduces a + b t, so A and B give the closed-form integrals:
    int phi_k (a + b t) dt and int phi_k' (a + b t) dt = -b int phi_k dt (phi_k vanishes at both ends)."""
    t = np.linspace(1.0, 6.0, 51)
    K, span, a, b = 50, 5.0, 0.7, -1.3
    A, B = sine_test_maps(t, K)
    k = np.arange(1, K + 1)
    omega = k * np.pi / span
    sign = (-1.0) ** k
    int_phi = np.sqrt(2 / span) * (1 - sign) / omega  # int_0^T sin(omega s) ds
    int_s_phi = -np.sqrt(2 / span) * span * sign / omega  # int_0^T s sin(omega s) ds
    line = a + b * t  # = (a + b t0) + b s with s = t - t0
    np.testing.assert_allclose(A @ line, (a + b * t[0]) * int_phi + b * int_s_phi, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(B @ line, -b * int_phi, rtol=1e-11, atol=1e-12)


def weak_residual(n: int, K: int = 10) -> float:
    """RMS of r = B y + A f(y) for the true field on noiseless oscillator data at n sample times (float64)."""
    system = get_system("oscillator")
    data = generate(system.resized("dense", n_times=n), "dense")
    A, B = sine_test_maps(data.t, K)
    y = data.train_clean
    r = np.einsum("kn,bns->bks", B, y) + np.einsum("kn,bns->bks", A, system.f(y, np))
    return float(np.sqrt((r ** 2).mean()))


def test_weak_residual_of_the_true_field_vanishes_at_third_order():
    """On the true solution with the true field the residual is the quadrature's error alone, and it falls like
    h^3 as the sampling is refined: the natural spline errs by O(h^2) within a few intervals of each end, where
    phi_k' does not vanish (a not-a-knot spline would give h^5: the order is the end condition's, not the rule's)."""
    errors = [weak_residual(n) for n in (51, 101, 201)]  # h = 0.2, 0.1, 0.05
    orders = np.log2(np.array(errors[:-1]) / errors[1:])
    assert np.all((orders > 2.8) & (orders < 3.2)), orders
    assert errors[1] < 1e-4  # at the dense regime's 101 times, against terms of order 1


def test_vf_node_loss_of_the_true_field_is_the_quadrature_error():
    """The trainer's own (float32) loss with the true field equals the loss written here in float64 from the maps
    and the equations (the mean over trajectories and states of sum_k (r_k / deriv_std)^2 / T): the quadrature's
    error, which grows like K^3 (r_k like k), tiny against the loss of the initial network."""
    system, data = dataset("oscillator")
    trainer = VFNode(system, data, {})
    with torch.no_grad():
        initial = trainer.loss().item()
        trainer.model = TrueField(system)
        at_truth = trainer.loss().item()
    A, B = sine_test_maps(data.t, trainer.config["K"])
    y = data.train
    r = np.einsum("kn,bns->bks", B, y) + np.einsum("kn,bns->bks", A, system.f(y, np))
    expected = ((r / trainer.scales["deriv_std"]) ** 2).sum(1).mean() / (data.t[-1] - data.t[0])
    assert at_truth == pytest.approx(expected, rel=1e-3)
    assert at_truth < 1e-6 * initial


def test_vf_node_caps_test_functions_at_the_sampling():
    system, data = dataset("oscillator", "sparse")  # 21 times
    trainer = VFNode(system, data, {"K": 500})
    assert trainer.config["K"] == 20 and trainer.A.shape == (20, 21) and trainer.By.shape == (4, 20, 2)


def float64(trainer: MultipleShooting, field=None) -> MultipleShooting:
    """The trainer's solve and data in float64 (the network, or the true `field` in its place); the targets cut
    again from the float64 observations, not widened from float32 ones."""
    trainer.model = field or trainer.model.double()
    trainer.std, trainer.t_seg = trainer.std.double(), trainer.t_seg.double()
    trainer.targets = trainer.cut(torch.as_tensor(trainer.data.train))
    return trainer


@pytest.mark.parametrize("regime, length", [("dense", 5), ("dense", 17), ("sparse", 21), ("sparse", 100)])
def test_segments_tile_each_trajectory_and_link_to_their_successors(regime, length):
    """Every observation lies in a segment of its trajectory, every segment spans segment_length observations,
    and a segment's link is the observation where its successor starts (that successor's first target)."""
    system, data = dataset("lotka-volterra", regime)
    trainer = MultipleShooting(system, data, {"segment_length": length})
    n_traj, n_obs, _ = data.train.shape
    seg = trainer.config["segment_length"]
    assert seg == min(length, n_obs) and trainer.targets.shape[1] == seg
    per_traj = trainer.n_segments // n_traj
    y = trainer.y
    for b in range(n_traj):
        chunk = trainer.targets[b * per_traj:(b + 1) * per_traj]  # (segments, seg, state)
        covered = {tuple(row) for row in chunk.flatten(0, 1).tolist()}
        assert covered == {tuple(row) for row in y[b].tolist()}
        assert torch.equal(chunk[0, 0], y[b, 0]) and torch.equal(chunk[-1, -1], y[b, -1])
    i = trainer.has_next.nonzero().squeeze(1)
    assert len(i) == trainer.n_segments - n_traj
    assert torch.equal(trainer.targets[i, trainer.link[i]], trainer.targets[i + 1, 0])
    assert torch.equal(trainer.states.detach(), trainer.targets[:, 0])


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "some"])
def test_batch_size_other_than_all_or_a_positive_integer_is_a_usage_error(size):
    from specbench.core.errors import UsageError

    system, data = dataset("oscillator", "sparse")
    with pytest.raises(UsageError, match="batch_size"):
        MultipleShooting(system, data, {"batch_size": size})


def test_continuity_gap_vanishes_at_the_solvers_order_on_the_true_trajectory():
    """Shooting states on the true solution (noiseless data) with the true field: the gap and the misfit are the
    RK4 error alone, and their square roots fall by 2^4 when the step is halved."""
    system, data = dataset("oscillator")
    gaps, misfits = [], []
    for steps in (1, 2):
        trainer = float64(MultipleShooting(system, data, {"segment_length": 11, "steps_per_obs": steps}),
                          TrueField(system))
        with torch.no_grad():
            misfit, gap = trainer.objective(trainer.targets[:, 0])
        misfits.append(misfit.item())
        gaps.append(gap.item())
    assert gaps[0] < 1e-9 and misfits[0] < 1e-9
    for pair in (gaps, misfits):
        order = np.log2(np.sqrt(pair[0] / pair[1]))
        assert 3.7 < order < 4.3, order


@pytest.mark.parametrize("batch", ["all", 7])
def test_shooting_gradients_equal_finite_differences(batch):
    """The gradients of misfit and gap with respect to the shooting states, by autograd through the RK4 solve,
    against finite differences (float64); also for a mini-batch in which some successors are not drawn."""
    system, data = dataset("lotka-volterra", "sparse")  # 4 trajectories x 41 times
    trainer = float64(MultipleShooting(system, data, {"segment_length": 9, "model": {"width": 8}}))
    segments = None if batch == "all" else torch.randperm(trainer.n_segments, generator=trainer.generator)[:batch]
    states = (trainer.targets[:, 0] + 0.05 * torch.randn(trainer.targets[:, 0].shape, dtype=torch.float64)
              ).requires_grad_()
    assert torch.autograd.gradcheck(lambda s: trainer.objective(s, segments), (states,))


@pytest.mark.parametrize("cls, cfg", [(VFNode, {}), (MultipleShooting, {}), (MultipleShooting, {"batch_size": 8})])
def test_rival_lowers_its_own_loss_on_a_small_dataset(cls, cfg):
    system, data = dataset("lotka-volterra", "sparse")
    trainer = cls(system, data, cfg, seed=0)
    losses = [trainer.step() for _ in range(60)]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10]) and trainer.iteration == 60
    assert trainer.role == "rival"
