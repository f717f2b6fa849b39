import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from specbench.registries import equation_systems, get_system
from specbench.systems.datasets import integrate


def dop853(system, x0, t):
    sol = solve_ivp(system.rhs_numpy, (t[0], t[-1]), x0, method="DOP853", t_eval=t, rtol=1e-12, atol=1e-12)
    return sol.y.T


def test_oscillator_closed_form_solves_the_ode():
    s = get_system("oscillator")
    t = np.linspace(0, 10, 51)
    for x0 in ([1.0, 0.0], [0.0, 1.0], [-1.3, 0.7]):
        np.testing.assert_allclose(s.exact(t, np.array(x0)), dop853(s, np.array(x0), t), rtol=1e-8, atol=1e-10)


def test_lotka_volterra_invariant_is_conserved():
    s = get_system("lotka-volterra")
    t = np.linspace(0, 10, 201)
    x = integrate(s, np.array([2.0, 1.0]), t)
    V = s.invariant(x)
    assert np.ptp(V) < 1e-8 * abs(V[0])


@pytest.mark.parametrize("n", [4, 16, 128])
def test_network_energy_never_increases_and_stays_bounded(n):
    s = get_system("network", n=n)
    assert s.dim == 2 * n
    t = np.linspace(0, 10, 101)
    x = integrate(s, s.sample_initial(np.random.default_rng(0), 1)[0], t)
    H = s.energy(x)
    assert np.all(np.diff(H) <= 1e-9 * H[0])
    assert np.isfinite(x).all() and np.abs(x).max() < 10


# Each system's equations, written again here from its docstring (and the paper it cites), apart from the package's
# `f`: numpy, x of shape (n, dim), float64.
def oscillator(s, x):  # x'' + 2 zeta omega x' + omega^2 x = 0: a linear field, x' = A x
    A = np.array([[0.0, 1.0], [-s.omega ** 2, -2 * s.zeta * s.omega]])
    return x @ A.T


def cubic_oscillator(s, x):  # torchdiffeq's ode_demo: dy/dt = y^3 A, y a row vector
    y1, y2 = x[:, 0] ** 3, x[:, 1] ** 3
    return np.stack([-0.1 * y1 - 2.0 * y2, 2.0 * y1 - 0.1 * y2], -1)


def lotka_volterra(s, x):  # dx/dt = 1.5 x - x y, dy/dt = x y - 3 y
    return np.stack([x[:, 0] * (1.5 - x[:, 1]), x[:, 1] * (x[:, 0] - 3.0)], -1)


def lorenz(s, x):  # sigma = 10, rho = 28, beta = 8/3
    u, v, w = x.T
    return np.stack([10.0 * (v - u), u * (28.0 - w) - v, u * v - 8.0 / 3.0 * w], -1)


def network(s, x):  # oscillator by oscillator, neighbours from the edge list (not the Laplacian)
    q, p = x[:, : s.n], x[:, s.n:]
    coupling = np.zeros_like(q)
    for i, j in s.edges:
        coupling[:, i] += q[:, j] - q[:, i]
        coupling[:, j] += q[:, i] - q[:, j]
    force = -s.omega ** 2 * q - s.beta * q ** 3 - s.gamma * p + s.kappa * coupling
    return np.concatenate([p, force], -1)


CLOSED_FORMS = {"oscillator": oscillator, "cubic-oscillator": cubic_oscillator, "lotka-volterra": lotka_volterra,
                "lorenz": lorenz, "network": network}


@pytest.mark.parametrize("name", equation_systems())
def test_vector_field_is_the_systems_equations(name):
    """f, in numpy (rhs_numpy) and in torch (rhs_torch, float64), equals the equations written out in this file,
    at states the system samples and at states far outside them. Every registered system needs its equations
    here: a new one without them fails."""
    s = get_system(name)
    x = np.concatenate([s.sample_initial(np.random.default_rng(1), 5),
                        np.random.default_rng(2).uniform(-5, 5, size=(5, s.dim))])
    truth = CLOSED_FORMS[name](s, x)
    np.testing.assert_allclose(s.rhs_torch(torch.as_tensor(x)).numpy(), truth, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.stack([s.rhs_numpy(0.0, xi) for xi in x]), truth, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, x, dxdt", [
    ("oscillator", [1.0, 2.0], [2.0, -1.4]),  # x' = v, v' = -2 (0.1) v - x
    ("oscillator", [-3.0, 0.0], [0.0, 3.0]),
    ("cubic-oscillator", [1.0, 2.0], [-16.1, 1.2]),  # (1, 8) A
    ("cubic-oscillator", [2.0, 0.0], [-0.8, 16.0]),  # (8, 0) A
    ("lotka-volterra", [1.0, 1.0], [0.5, -2.0]),
    ("lotka-volterra", [3.0, 1.5], [0.0, 0.0]),  # the equilibrium (c, a)
    ("lorenz", [1.0, 1.0, 1.0], [0.0, 26.0, -5.0 / 3.0]),
    ("lorenz", [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
    ("lorenz", [6 * 2 ** 0.5, 6 * 2 ** 0.5, 27.0], [0.0, 0.0, 0.0]),  # C+ = (sqrt(beta (rho-1)), ., rho-1)
    ("lorenz", [-6 * 2 ** 0.5, -6 * 2 ** 0.5, 27.0], [0.0, 0.0, 0.0]),  # C-
])
def test_vector_field_at_hand_computed_points(name, x, dxdt):
    s = get_system(name)
    np.testing.assert_allclose(s.rhs_numpy(0.0, np.array(x)), dxdt, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.rhs_torch(torch.tensor(x, dtype=torch.float64)).numpy(), dxdt, rtol=1e-12,
                               atol=1e-12)


def test_network_at_a_hand_computed_point():
    """One oscillator displaced, the rest at rest: dp_i/dt = -omega_i^2 q - beta q^3 - kappa deg(i) q for it and
    kappa q for each of its neighbours; every dq/dt is the momentum, zero here."""
    s = get_system("network", n=8)
    x = np.zeros(16)
    x[0] = 1.0
    neighbours = {j for i, j in s.edges if i == 0} | {i for i, j in s.edges if j == 0}
    expected = np.zeros(16)
    expected[8] = -s.omega[0] ** 2 - 0.5 - 0.5 * len(neighbours)
    for j in neighbours:
        expected[8 + j] = 0.5
    np.testing.assert_allclose(s.rhs_numpy(0.0, x), expected, rtol=1e-12, atol=1e-15)
    assert {(i, (i + 1) % 8) for i in range(8)} <= set(s.edges) and len(s.edges) == 8 + 8 // 4


@pytest.mark.parametrize("name", ["lotka-volterra", "network"])
def test_field_is_tangent_to_the_invariant_and_dissipates_the_energy(name):
    """Pointwise, from gradients written here: grad V . f = 0 for the Lotka-Volterra invariant
    V = x - c ln x + y - a ln y, and grad H . f = -gamma |p|^2 for the network's energy."""
    s = get_system(name, **({"n": 6} if name == "network" else {}))
    rng = np.random.default_rng(3)
    if name == "lotka-volterra":
        x = rng.uniform(0.1, 6.0, size=(20, 2))
        grad = np.stack([1 - 3.0 / x[:, 0], 1 - 1.5 / x[:, 1]], -1)
        expected = np.zeros(20)
    else:
        x = rng.uniform(-2, 2, size=(20, 12))
        q, p = x[:, :6], x[:, 6:]
        dq = s.omega ** 2 * q + s.beta * q ** 3
        for i, j in s.edges:
            dq[:, i] += s.kappa * (q[:, i] - q[:, j])
            dq[:, j] += s.kappa * (q[:, j] - q[:, i])
        grad = np.concatenate([dq, p], -1)
        expected = -s.gamma * (p ** 2).sum(-1)
    rate = (grad * np.stack([s.rhs_numpy(0.0, xi) for xi in x])).sum(-1)
    np.testing.assert_allclose(rate, expected, rtol=1e-10, atol=1e-10)


def test_unknown_system_names_the_valid_ones():
    from specbench.core.errors import UsageError

    with pytest.raises(UsageError, match="valid systems: oscillator"):
        get_system("nosuch")
