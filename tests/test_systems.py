import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from specbench.data import integrate
from specbench.systems import SYSTEMS, get_system


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


@pytest.mark.parametrize("name", SYSTEMS)
def test_torch_and_numpy_right_hand_sides_agree(name):
    s = get_system(name)
    x = s.sample_initial(np.random.default_rng(1), 5)
    np.testing.assert_allclose(s.rhs_torch(torch.as_tensor(x)).numpy(), s.f(x, np), rtol=1e-12)
    np.testing.assert_allclose(s.rhs_numpy(0.0, x[0]), s.f(x, np)[0], rtol=1e-12)


def test_unknown_system_names_the_valid_ones():
    from specbench.errors import UsageError

    with pytest.raises(UsageError, match="valid systems: oscillator"):
        get_system("nosuch")
