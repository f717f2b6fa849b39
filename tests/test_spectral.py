"""GLL numerics against exact identities (STYLE.md: quadrature to degree 2p-1, differentiation and
interpolation exact to degree p; element blocks that assemble to the dense matrices; a solve equal to the dense
one)."""
import numpy as np
import pytest
import torch

from specbench.numerics.gll import (ElementSolver, Mesh, differentiation_matrix, gll_nodes_weights, lagrange_matrix,
                                    legendre_to_nodal, nodal_to_legendre, representation_error)

ORDERS = [1, 2, 3, 5, 8, 12, 20]


@pytest.mark.parametrize("p", ORDERS)
def test_quadrature_is_exact_to_degree_2p_minus_1(p):
    x, w = gll_nodes_weights(p)
    assert x[0] == -1 and x[-1] == 1 and np.all(np.diff(x) > 0)
    for k in range(2 * p):
        exact = (1 - (-1) ** (k + 1)) / (k + 1)
        assert (w * x ** k).sum() == pytest.approx(exact, abs=1e-13)


@pytest.mark.parametrize("p", [2, 3, 5, 8])
def test_quadrature_is_not_exact_at_degree_2p(p):
    """The GLL rule's known limit (a test that would pass for any rule would prove nothing)."""
    x, w = gll_nodes_weights(p)
    assert abs((w * x ** (2 * p)).sum() - 2 / (2 * p + 1)) > 1e-6


@pytest.mark.parametrize("p", ORDERS)
def test_differentiation_and_interpolation_are_exact_to_degree_p(p):
    x, _ = gll_nodes_weights(p)
    D = differentiation_matrix(x)
    s = np.linspace(-1, 1, 17)
    M = lagrange_matrix(x, s)
    for k in range(p + 1):
        np.testing.assert_allclose(D @ x ** k, k * x ** max(k - 1, 0) if k else 0 * x, atol=1e-10 * p ** 2)
        np.testing.assert_allclose(M @ x ** k, s ** k, atol=1e-12)


@pytest.mark.parametrize("E, p", [(1, 3), (4, 2), (5, 6), (12, 8)])
def test_mesh_operators_are_exact_on_global_polynomials_of_degree_p(E, p):
    mesh = Mesh(0.5, 3.5, E, p)
    assert mesh.n_nodes == E * p + 1 and mesh.times[0] == 0.5 and mesh.times[-1] == pytest.approx(3.5)
    t = np.linspace(0.5, 3.5, 41)
    local_t = mesh.gather @ mesh.times
    for k in range(p + 1):
        c = mesh.times ** k
        np.testing.assert_allclose(mesh.interpolation(t) @ c, t ** k, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(mesh.derivative @ c, k * local_t ** max(k - 1, 0) if k else 0 * local_t,
                                   rtol=1e-9, atol=1e-9)
    assert mesh.quadrature.sum() == pytest.approx(3.0)
    # Quadrature over the elements integrates t^(2p-1) exactly.
    assert mesh.quadrature @ local_t ** (2 * p - 1) == pytest.approx((3.5 ** (2 * p) - 0.5 ** (2 * p)) / (2 * p))


def test_interpolation_at_nodes_is_the_identity():
    mesh = Mesh(0.0, 2.0, 3, 4)
    np.testing.assert_array_equal(mesh.interpolation(mesh.times), np.eye(mesh.n_nodes))


@pytest.mark.parametrize("p", [3, 7, 15])
def test_legendre_round_trip(p):
    coeffs = np.random.default_rng(p).standard_normal((p + 1, 2))
    np.testing.assert_allclose(nodal_to_legendre(legendre_to_nodal(coeffs, p), p), coeffs, atol=1e-11)
    # a single Legendre mode has exactly one nonzero coefficient
    x, _ = gll_nodes_weights(p)
    np.testing.assert_allclose(nodal_to_legendre(x ** 0, p), np.eye(p + 1)[0], atol=1e-12)


def test_representation_error_falls_exponentially_with_order():
    """On the smooth oscillator the error of the nodal interpolant drops by orders of magnitude as p rises."""
    from specbench.registries import get_system

    s = get_system("oscillator")
    t = np.linspace(0, 10, 400)
    errors = []
    for p in (2, 4, 8, 16):
        mesh = Mesh(0, 10, 2, p)
        c = s.exact(mesh.times, np.array([1.0, 0.0]))
        errors.append(np.abs(mesh.interpolation(t) @ c - s.exact(t, np.array([1.0, 0.0]))).max())
    assert errors[-1] < 1e-7 and all(b < a / 10 for a, b in zip(errors, errors[1:]))


@pytest.mark.parametrize("E, p", [(1, 4), (3, 5), (6, 2)])
def test_least_squares_fit_is_exact_on_global_polynomials(E, p):
    mesh = Mesh(0.0, 3.0, E, p)
    t = np.linspace(0.0, 3.0, 3 * E * p + 1)
    y = np.stack([t ** p - 2 * t, 1 + t ** (p - 1)], -1)[None]  # (1, times, 2)
    c = mesh.fit(t, y)
    assert c.shape == (1, mesh.n_nodes, 2)
    assert np.allclose(mesh.interpolation(t) @ c[0], y[0], atol=1e-10)


def test_representation_error_falls_exponentially_with_p():
    """A smooth trajectory: the error falls by orders of magnitude with p, and faster than any fixed power of p."""
    t, t_fine = np.linspace(0, 10, 201), np.linspace(0, 10, 801)
    traj = lambda s: np.stack([np.sin(s), np.cos(0.7 * s)], -1)[None]  # noqa: E731
    orders = [2, 4, 6, 8, 10, 12]
    errors = [representation_error(Mesh(0.0, 10.0, 4, p), t, traj(t), t_fine, traj(t_fine)) for p in orders]
    assert errors[-1] < 1e-9 * errors[0]
    falls = [a / b for a, b in zip(errors, errors[1:])]
    # under a power law p^-k each step of 2 in p would fall by less than the last; here every fall is larger
    assert all(f > 10 for f in falls) and all(b >= a for a, b in zip(falls, falls[1:]))


MESHES = [(1, 1), (1, 4), (2, 1), (4, 1), (3, 2), (5, 6), (12, 8), (33, 3)]


@pytest.mark.parametrize("E, p", MESHES)
def test_element_blocks_assemble_to_the_dense_matrices(E, p):
    mesh = Mesh(0.0, 4.0, E, p)
    t = np.concatenate([np.linspace(0.0, 4.0, 2 * E * p + 7), mesh.times[::p]])  # element ends and in between
    P, G, w = mesh.interpolation(t), mesh.derivative, mesh.quadrature
    np.testing.assert_allclose(mesh.assemble(mesh.observation_blocks(t)), P.T @ P, rtol=1e-13, atol=1e-13)
    GtWG = G.T @ (w[:, None] * G)
    np.testing.assert_allclose(mesh.assemble(np.broadcast_to(mesh.stiffness_block, (E, p + 1, p + 1))), GtWG,
                               rtol=1e-12, atol=1e-12 * np.abs(GtWG).max())
    np.testing.assert_array_equal(mesh.assemble(mesh.identity_blocks), np.eye(mesh.n_nodes))


def spd_blocks(E, p, batch, seed):
    """Random SPD element blocks, each a different matrix: the solver must not rely on the spectral ones."""
    m = torch.randn(batch, E, p + 1, p + 1, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return m @ m.mT + 0.1 * torch.eye(p + 1, dtype=torch.float64)


@pytest.mark.parametrize("E, p", MESHES)
def test_element_solver_equals_the_dense_solve(E, p):
    mesh = Mesh(0.0, 4.0, E, p)
    t = np.linspace(0.0, 4.0, 3 * E * p + 1)
    # the c-step's matrices from a tiny to a large residual weight (condition numbers up to ~1e7), and random ones
    lam = np.array([1e-4, 1.0, 1e3])[:, None, None, None]
    spectral = torch.as_tensor(mesh.observation_blocks(t)[None] + lam * mesh.stiffness_block
                               + 1e-2 * mesh.identity_blocks[None])
    for blocks in (spectral, spd_blocks(E, p, 2, seed=E * p)):
        A = torch.as_tensor(mesh.assemble(blocks.numpy()))
        b = torch.randn(len(blocks), mesh.n_nodes, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        x, dense = ElementSolver(blocks).solve(b), torch.linalg.solve(A, b)
        cond = torch.linalg.cond(A)[:, None, None]
        assert torch.all((x - dense).abs() <= 10 * cond * 2.2e-16 * dense.abs().amax((1, 2), keepdim=True))
        # backward error at round-off: x solves a system within a few ulps of A's
        backward = (A @ x - b).norm(dim=1) / (torch.linalg.matrix_norm(A, 2)[:, None] * x.norm(dim=1))
        assert backward.max() < 1e-14


def test_element_solver_keeps_its_matrix_banded():
    """What the solver keeps grows linearly with the elements: no tensor of size nodes x nodes."""
    E, p = 200, 6
    solver = ElementSolver(spd_blocks(E, p, 1, seed=0))
    kept = [solver.K, solver.condense, solver.inv_diag] + [k for _, *ks in solver.levels for k in ks]
    per_element = sum(v.numel() for v in kept) / E
    assert per_element < 2 * (p + 1) ** 2 + 3 * np.log2(E + 1)  # a dense factor would be E * p^2 / 2 per element


@pytest.mark.parametrize("E, p", MESHES)
@pytest.mark.parametrize("k", [2, 3])
def test_element_solver_with_k_unknowns_per_node_equals_the_dense_solve(E, p, k):
    """Node blocks (the Gauss-Newton c-step's states coupled at each node): the block tridiagonal reduction is the
    dense solve to round-off."""
    mesh = Mesh(0.0, 4.0, E, p)
    m = torch.randn(2, E, (p + 1) * k, (p + 1) * k, dtype=torch.float64, generator=torch.Generator().manual_seed(E))
    blocks = m @ m.mT + 0.1 * torch.eye((p + 1) * k, dtype=torch.float64)
    unknowns = (mesh.element_nodes[:, :, None] * k + np.arange(k)).reshape(E, -1)  # element e's, node by node
    A = torch.zeros(2, mesh.n_nodes * k, mesh.n_nodes * k, dtype=torch.float64)
    for e, at in enumerate(torch.as_tensor(unknowns)):
        A[:, at[:, None], at[None, :]] += blocks[:, e]
    b = torch.randn(2, mesh.n_nodes * k, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x, dense = ElementSolver(blocks, node=k).solve(b), torch.linalg.solve(A, b)
    cond = torch.linalg.cond(A)[:, None, None]
    assert torch.all((x - dense).abs() <= 10 * cond * 2.2e-16 * dense.abs().amax((1, 2), keepdim=True))
