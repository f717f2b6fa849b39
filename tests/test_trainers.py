import numpy as np
import pytest
import torch

from specbench.core.errors import Diverged
from specbench.registries import TRAINERS
from specbench.trainers.spectral import Spectral
from tests.helpers import TrueField, dataset

# Small, quick settings for the solver baselines (segment mini-batches): a test checks behaviour, not speed. The lists
# come from what each registered trainer declares, so a new trainer is in every test with no edit here.
FAST = {name: {"batch_size": 8, "segment_length": 10} for name, cls in TRAINERS.items()
        if cls.role == "baseline" and cls.solves_ode}
ADJOINTS = [name for name, cls in TRAINERS.items() if cls.defaults.get("adjoint")]  # slower steps: marked slow
ADAPTIVE = [name for name in FAST if TRAINERS[name].defaults.get("method") == "dopri5"]  # solves that can fail


def solver_gradient(name: str, **cfg):
    """(loss, gradient, network evaluations) of one step of trainer `name` on lotka-volterra in float64, at seed 0
    (so the same initial weights and the same batch of segments for every trainer), with lr = 0 (Adam leaves the
    weights where they are, the gradients stay on them)."""
    system, data = dataset("lotka-volterra")
    trainer = TRAINERS[name](system, data, {"lr": 0.0, "batch_size": 4, "segment_length": 20, **cfg}, seed=0)
    trainer.model.double()
    trainer.y, trainer.std, trainer.t_seg = trainer.y.double(), trainer.std.double(), trainer.t_seg.double()
    weights = [p.detach().clone() for p in trainer.model.parameters()]
    nfe = trainer.model.nfe
    loss = trainer.step()
    assert all(torch.equal(w, p) for w, p in zip(weights, trainer.model.parameters()))
    return loss, torch.cat([p.grad.flatten() for p in trainer.model.parameters()]), trainer.model.nfe - nfe


@pytest.mark.parametrize("seminorm", [True, False])
def test_adjoint_trainer_gradient_equals_backprop_trainers_float64(seminorm):
    """AdjointDopri5's gradient (the adjoint ODE, with and without the seminorm) is BackpropDopri5's direct one
    (backprop through the same dopri5 solve) on the same batch and weights, to the solvers' tolerance (1e-10)."""
    tight = {"rtol": 1e-10, "atol": 1e-10}
    direct_loss, direct, _ = solver_gradient("backprop-dopri5", **tight)
    loss, adjoint, _ = solver_gradient("adjoint-dopri5", seminorm=seminorm, **tight)
    assert loss == pytest.approx(direct_loss, rel=1e-12)
    assert (adjoint - direct).norm() < 1e-8 * direct.norm()


def test_adjoint_seminorm_is_in_effect():
    """seminorm=True reaches torchdiffeq: at the trainer's own tolerances its backward solve needs fewer network
    evaluations than the same step without it (its error control ignores the parameters' adjoint), for the same
    forward solve."""
    _, _, with_seminorm = solver_gradient("adjoint-dopri5", seminorm=True)
    _, _, without = solver_gradient("adjoint-dopri5", seminorm=False)
    assert with_seminorm < without


@pytest.mark.parametrize("E, p", [(3, 4), (7, 6)])
def test_spectral_applies_the_mesh_operators_exactly(E, p):
    """The trainer's gathers and element-local products are the mesh's dense P, S, G and G' (float64 check)."""
    system, data = dataset("lotka-volterra")
    trainer = Spectral(system, data, {"E": E, "p": p})
    mesh = trainer.mesh
    c = trainer.c.double()
    trainer.c, trainer.D = c, torch.as_tensor(mesh.local_derivative)
    x, dxdt = trainer.nodes()
    assert torch.allclose(x, torch.as_tensor(mesh.gather) @ c, atol=1e-12)
    assert torch.allclose(dxdt, torch.as_tensor(mesh.derivative) @ c, atol=1e-10)
    assert torch.allclose(trainer.at_observations(), torch.as_tensor(mesh.interpolation(data.t)) @ c, atol=1e-12)
    v = torch.randn(c.shape[0], mesh.E * (p + 1), c.shape[-1], dtype=torch.float64)
    local = torch.einsum("ji,bejs->beis", trainer.D, v.view(c.shape[0], E, p + 1, -1))  # D' per element
    assert torch.allclose(trainer.scatter(local, torch.zeros_like(c)), torch.as_tensor(mesh.derivative).T @ v,
                          atol=1e-10)
    some = torch.tensor([0, E + 2, 2 * E - 1])  # element 0 of trajectory 0, elements 2 and E-1 of trajectory 1
    assert torch.equal(trainer.element_values(some)[0], trainer.element_values()[0].flatten(0, 1)[some])


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
    at_truth = trainer.theta_loss()[0].item()
    trainer.c = trainer.c + 1e-3 * torch.randn_like(trainer.c)
    assert at_truth < 1e-9 and at_truth < 1e-4 * trainer.theta_loss()[0].item()


def dense_data_term(trainer: Spectral, c: torch.Tensor) -> torch.Tensor:
    """The data term written from the mesh's dense P and the observations: the mean of ((P c - y) / std)^2."""
    P, y, std = (torch.as_tensor(a) for a in (trainer.mesh.interpolation(trainer.data.t), trainer.data.train,
                                              trainer.scales["std"]))
    return (((P @ c - y) / std) ** 2).mean()


@pytest.mark.parametrize("name, cfg", [("lotka-volterra", {"E": 9, "p": 5}), ("oscillator", {"elements_per_step": 16})])
def test_data_term_equals_the_mean_squared_error_at_the_observations(name, cfg):
    """data_loss is the quadratic form c'P'Pc - 2 c.P'y + y.y (float64, from P'P and P'y): equal to the mean of
    ((P c - y) / std)^2 written from the mesh's dense P and the observations, per chunk of trajectories and in all."""
    system, data = dataset(name)
    trainer = Spectral(system, data, cfg)
    for _ in range(3):
        trainer.step()  # a c that no longer fits the data
    direct = dense_data_term(trainer, trainer.c.double())
    assert torch.allclose(trainer.data_loss(), direct, rtol=1e-9)
    assert torch.allclose(sum(trainer.data_loss(k) for k in trainer.chunks), direct, rtol=1e-9)
    P = torch.as_tensor(trainer.mesh.interpolation(data.t))
    assert torch.allclose(trainer.at_observations().double(), P @ trainer.c.double(), atol=1e-6)


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


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in ADJOINTS else n for n in TRAINERS])
def test_each_trainer_lowers_its_own_loss_on_oscillator(name):
    """40 steps: every built-in trainer's last ten losses average under a quarter of its first ten (0.23 at most,
    the solver baselines; spectral 0.06), so halving them is no close call."""
    system, data = dataset("oscillator")
    trainer = TRAINERS[name](system, data, FAST.get(name), seed=0)
    losses = [trainer.step() for _ in range(40)]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert trainer.iteration == 40


def test_unknown_setting_is_an_error_not_ignored():
    from specbench.core.errors import UsageError

    system, data = dataset("oscillator")
    with pytest.raises(UsageError, match="learning_rate"):
        TRAINERS["spectral"](system, data, {"learning_rate": 1.0})


@pytest.mark.parametrize("name", TRAINERS)
def test_blow_up_is_reported_as_diverged(name):
    """A field that has blown up (here: infinite output scale) makes step() raise Diverged, for every trainer.
    (A huge learning rate is no such test: tanh saturates and the spectral loss stays finite.)"""
    system, data = dataset("oscillator")
    trainer = TRAINERS[name](system, data, {**FAST.get(name, {}), "max_num_steps": 50}
                             if name in ADAPTIVE else FAST.get(name), seed=0)
    with torch.no_grad():
        trainer.model.deriv_std.fill_(float("inf"))
    with pytest.raises(Diverged):
        trainer.step()


@pytest.mark.parametrize("name", ADAPTIVE)
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
    """The number of Python function calls in a step does not depend on p, the trajectory count or the state size,
    and grows with E only through the ceil(log2(E+1)) levels of the c-step's cyclic reduction, by the same number
    of calls per level: every step is batched over trajectories x elements x nodes."""
    import cProfile
    import pstats

    def calls(regime, n, cfg):
        system, data = dataset("network", regime, n=n)
        trainer = Spectral(system, data, cfg)
        trainer.step()
        profile = cProfile.Profile()
        profile.enable()
        trainer.step()
        profile.disable()
        return pstats.Stats(profile).total_calls

    # E = 4 to 7: three levels; E = 8: four; E = 16: five
    same = {calls("dense", 4, {"E": 4}), calls("sparse", 4, {"E": 7, "p": 4}), calls("dense", 8, {"E": 5, "p": 2})}
    assert len(same) == 1, same
    four, five = calls("dense", 4, {"E": 8}), calls("dense", 8, {"E": 16, "p": 3})
    assert 0 < four - same.pop() == five - four < 10


def float64(trainer: Spectral) -> Spectral:
    """The trainer's network and theta-step tensors in float64, for checks at round-off."""
    trainer.model.double()
    for name in ("c", "D", "residual_weight"):
        setattr(trainer, name, getattr(trainer, name).double())
    return trainer


@pytest.mark.parametrize("name, params, cfg", [("lotka-volterra", {}, {"E": 9, "p": 5, "rho": 0.3}),
                                               ("network", {"n": 4}, {"E": 4, "p": 8, "rho": 3.0, "prox": 0.1})])
def test_coefficient_step_zeroes_the_gradient_of_its_objective(name, params, cfg):
    """After a c-step, the gradient of J + mu ||c - c_old||^2 with respect to c vanishes to round-off (float64).
    J is written here from the mesh's dense P, G and W, apart from the trainer's code; mu is in the units of the
    normal equations, which are J's state by state times N std_s^2 (N = traj * obs * state)."""
    system, data = dataset(name, **params)
    trainer = Spectral(system, data, cfg)
    for _ in range(3):
        trainer.step()  # a network that is not the initial one, a c that is not the initial fit
    mesh, (traj, n_obs, dim) = trainer.mesh, data.train.shape
    f = trainer.field().double()  # (traj, E, p+1, state) at the current c, held fixed
    c_old = trainer.c.double()
    G, w = (torch.as_tensor(a) for a in (mesh.derivative, mesh.quadrature))
    std, dstd = (torch.as_tensor(a) for a in (trainer.scales["std"], trainer.scales["deriv_std"]))
    span = data.t[-1] - data.t[0]

    def objective(c):
        data_term = dense_data_term(trainer, c)
        dyn = (w[:, None] * ((G @ c - f.flatten(1, 2)) / dstd) ** 2).sum() / (traj * span * dim)
        prox = (trainer.mu / (traj * n_obs * dim * std ** 2) * (c - c_old) ** 2).sum()
        return data_term + cfg["rho"] * dyn + prox

    def gradient(c):
        c = c.clone().requires_grad_()
        return torch.autograd.grad(objective(c), c)[0]

    c_new = trainer.coefficient_step(f)
    assert c_new.dtype == torch.float64 and not torch.equal(c_new, c_old)
    assert gradient(c_new).norm() < 1e-9 * gradient(c_old).norm()


def test_residual_loss_passes_gradcheck():
    """Gradients of the dynamics term with respect to c and theta, by autograd, against finite differences."""
    system, data = dataset("lotka-volterra", "sparse")
    trainer = float64(Spectral(system, data, {"E": 3, "p": 4, "model": {"width": 8}}))
    names = [n for n, _ in trainer.model.named_parameters()]

    def residual(c, *params):
        trainer.c = c
        x, dxdt = trainer.element_values()
        f = torch.func.functional_call(trainer.model, dict(zip(names, params)), (None, x))
        return trainer.residual_loss(f, dxdt)

    c = trainer.c.clone().requires_grad_()
    params = [p.detach().clone().requires_grad_() for p in trainer.model.parameters()]
    assert torch.autograd.gradcheck(residual, (c, *params))


@pytest.mark.parametrize("per_step", [1, 5, 7, 19])
def test_mini_batch_theta_gradient_averages_to_the_full_one_over_an_epoch(per_step):
    """Every element lands in exactly one batch of an epoch, and the mean of the batches' gradients is the full
    gradient (float64), also when the batch size does not divide the element count."""
    system, data = dataset("lotka-volterra", "sparse")  # 4 trajectories x 5 elements = 20 elements
    trainer = float64(Spectral(system, data, {"E": 5, "p": 4, "elements_per_step": per_step}))

    def gradient(elements):
        trainer.optimizer.zero_grad()
        trainer.theta_loss(elements)[0].backward()
        return torch.cat([p.grad.flatten() for p in trainer.model.parameters()])

    batches = trainer.epoch()
    assert len(batches) == trainer.n_batches == -(-20 // per_step)
    assert torch.equal(torch.cat(batches).sort().values, torch.arange(20))
    full = gradient(None)
    mean = torch.stack([gradient(b) for b in batches]).mean(0)
    assert torch.allclose(mean, full, rtol=1e-12, atol=1e-14 * full.abs().max())


def test_mini_batches_bound_what_one_network_call_sees():
    """With elements_per_step, no network call in a step (theta step or the c-step's field) sees more nodes than
    a mini-batch holds, whatever the horizon: activation memory stops growing with it. It still trains."""
    system, data = dataset("oscillator")
    trainer = Spectral(system, data, {"E": 4, "elements_per_step": 16})  # 64 elements: 4 batches
    sizes = []
    trainer.model.register_forward_hook(lambda module, args, out: sizes.append(args[1].shape[:-1].numel()))
    losses = [trainer.step() for _ in range(100)]
    assert max(sizes) == 16 * (trainer.mesh.p + 1) and trainer.n_elements == 64
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    full = Spectral(system, data, {"E": 4})
    full.c = trainer.c
    full.model.load_state_dict(trainer.model.state_dict())
    assert torch.allclose(trainer.field(), full.field(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("per_step", ["all", 16])
@pytest.mark.parametrize("sweep, passes", [("jacobi", 1), ("gauss-seidel", 2)])
def test_sweep_decides_which_field_the_coefficient_step_sees(sweep, passes, per_step):
    """Jacobi: the c-step takes f_theta from before the theta update, on all elements the theta step's own forward
    pass (one network pass per iteration); Gauss-Seidel evaluates f_theta again after it (two). With mini-batches
    too, each update sees the other's old value under Jacobi."""
    system, data = dataset("lotka-volterra")
    trainer = Spectral(system, data, {"sweep": sweep, "elements_per_step": per_step})
    trainer.step()
    c0, before = trainer.c.clone(), trainer.field()  # the c-step writes c in place
    nfe = trainer.model.nfe
    trainer.step()
    if per_step == "all":
        assert trainer.model.nfe - nfe == passes
    c1 = trainer.c
    trainer.c = c0
    field = before if sweep == "jacobi" else trainer.field()
    assert torch.allclose(trainer.coefficient_step(field).float(), c1, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(trainer.coefficient_step(trainer.field() if sweep == "jacobi" else before).float(),
                              c1, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("per_step, chunks", [(1, 4), (2, 2)])
def test_coefficient_sweep_in_chunks_of_trajectories_is_the_whole_c_step(per_step, chunks):
    """With mini-batches the c-step runs a chunk of trajectories at a time (about 8 batches' elements, at least one
    trajectory); it is the same exact minimiser, and the data term it returns is the one at the old c."""
    system, data = dataset("lotka-volterra", "sparse")  # 4 trajectories x 5 elements
    trainer = Spectral(system, data, {"E": 5, "p": 4, "elements_per_step": per_step})
    assert len(trainer.chunks) == chunks
    trainer.step()
    f, data_term = trainer.field(), trainer.data_loss()
    whole = trainer.coefficient_step(f).float()
    assert torch.allclose(trainer.coefficient_sweep(f), data_term, rtol=1e-6)
    assert torch.allclose(trainer.c, whole, rtol=1e-6, atol=1e-7)


def test_unknown_sweep_or_batch_size_is_a_usage_error():
    from specbench.core.errors import UsageError

    system, data = dataset("oscillator")
    with pytest.raises(UsageError, match="gauss-seidel"):
        Spectral(system, data, {"sweep": "gauss"})
    with pytest.raises(UsageError, match="elements_per_step"):
        Spectral(system, data, {"elements_per_step": 0})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cfg", [{}, {"sweep": "gauss-seidel"}, {"elements_per_step": 16}])
def test_spectral_full_step_runs_on_cuda_and_matches_cpu(cfg):
    """Every tensor of the step lives on the GPU (the c-step's solve included), and a c-step there equals the
    same c-step on the CPU to float64 round-off."""
    system, data = dataset("lotka-volterra")
    gpu, cpu = Spectral(system, data, cfg, device="cuda"), Spectral(system, data, cfg)
    assert gpu.solver.condense.is_cuda and gpu.c.is_cuda and gpu.PtY.is_cuda
    assert torch.allclose(gpu.c.cpu(), cpu.c, rtol=1e-5, atol=1e-6)
    f = cpu.field().double()
    assert torch.allclose(gpu.coefficient_step(f.cuda()).cpu(), cpu.coefficient_step(f), rtol=1e-10, atol=1e-12)
    losses = [gpu.step() for _ in range(50)]
    assert np.isfinite(losses).all() and gpu.c.is_cuda and np.mean(losses[-5:]) < np.mean(losses[:5])


@pytest.mark.parametrize("steps", [0, -1, 1.5, True, "2"])
def test_theta_steps_below_one_or_not_an_integer_is_a_usage_error(steps):
    """theta_steps is the number of Adam steps on theta per iteration: 0 would leave an iteration with no theta
    step (nothing for the c-step to see), so it is refused when the trainer is built, naming the setting."""
    from specbench.core.errors import UsageError

    system, data = dataset("oscillator")
    with pytest.raises(UsageError, match="theta_steps"):
        Spectral(system, data, {"theta_steps": steps})


@pytest.mark.parametrize("steps", [2, 3])
def test_jacobi_c_step_sees_theta_from_before_every_theta_update(steps):
    """With theta_steps > 1 on all elements, Jacobi's c-step takes f_theta from theta as it was before the
    iteration's first Adam update (the docstring's "theta before its update"), not after theta_steps - 1 of them."""
    system, data = dataset("lotka-volterra")
    trainer = Spectral(system, data, {"theta_steps": steps})
    trainer.step()
    c0, before = trainer.c.clone(), trainer.field()  # theta and c at the start of the next iteration
    trainer.step()
    c1 = trainer.c
    trainer.c = c0
    assert torch.allclose(trainer.coefficient_step(before).float(), c1, rtol=1e-6, atol=1e-7)
