"""Gauss–Lobatto–Legendre (GLL) spectral-element numerics: the mesh in numpy (float64), its solver in torch.

A trajectory on [t0, t1] is split into E equal elements; on each, x(t) is the degree-p polynomial through its
values at the p+1 GLL nodes. Neighbouring elements share their end node (C0 continuity), so one trajectory has
E*p + 1 global nodes. A matrix that only couples nodes of one element (P'P, G'WG, I) is held in element form,
one (p+1, p+1) block per element, and `ElementSolver` solves with a sum of such blocks in time and memory linear
in E, batched over matrices and right-hand sides, on any torch device (static condensation onto the shared end
nodes, then cyclic reduction). References: Canuto, Hussaini, Quarteroni & Zang, "Spectral Methods" (2006),
ch. 2; Quaglino et al., "SNODE", ICLR 2020, sec. 3; Karniadakis & Sherwin, "Spectral/hp Element Methods for
CFD" (2005), sec. 4.1 (static condensation); Hockney (1965) and Hockney & Jesshope (1981) (cyclic reduction).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from numpy.polynomial import legendre as L


def gll_nodes_weights(p: int) -> tuple[np.ndarray, np.ndarray]:
    """GLL nodes on [-1, 1] (ascending, shape (p+1,)) and weights; the rule is exact to degree 2p-1."""
    if p < 1:
        raise ValueError(f"GLL order must be >= 1, got {p}")
    interior = L.legroots(L.legder([0] * p + [1])) if p > 1 else np.array([])
    x = np.concatenate([[-1.0], np.sort(interior.real), [1.0]])
    for _ in range(3):  # Newton polish of the interior roots of P'_p: companion-matrix roots lose digits at high p
        d1 = L.legval(x[1:-1], L.legder([0] * p + [1]))
        d2 = L.legval(x[1:-1], L.legder([0] * p + [1], 2))
        x[1:-1] -= d1 / d2
    w = 2.0 / (p * (p + 1) * L.legval(x, [0] * p + [1]) ** 2)
    return x, w


def barycentric_weights(x: np.ndarray) -> np.ndarray:
    diff = x[:, None] - x[None, :]
    np.fill_diagonal(diff, 1.0)
    return 1.0 / diff.prod(1)


def differentiation_matrix(x: np.ndarray) -> np.ndarray:
    """D with (D u)_i = u'(x_i) for the interpolating polynomial through (x_j, u_j); exact to degree len(x)-1."""
    b = barycentric_weights(x)
    diff = x[:, None] - x[None, :]
    np.fill_diagonal(diff, 1.0)
    D = (b[None, :] / b[:, None]) / diff
    np.fill_diagonal(D, 0.0)
    np.fill_diagonal(D, -D.sum(1))  # rows sum to zero: the derivative of a constant is exactly zero
    return D


def lagrange_matrix(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """M with (M u)_k = u(s_k) for the polynomial through (x_j, u_j); shape (len(s), len(x))."""
    b = barycentric_weights(x)
    diff = s[:, None] - x[None, :]
    exact = np.isclose(diff, 0.0, atol=1e-14, rtol=0)
    diff[exact] = 1.0
    M = b[None, :] / diff
    M /= M.sum(1, keepdims=True)
    rows = exact.any(1)
    M[rows] = exact[rows].astype(float)  # a point on a node takes that node's value exactly
    return M


def legendre_vandermonde(x: np.ndarray, p: int) -> np.ndarray:
    """V with V[i, k] = P_k(x_i), shape (len(x), p+1)."""
    return L.legvander(x, p)


def nodal_to_legendre(values: np.ndarray, p: int) -> np.ndarray:
    """Legendre coefficients (first axis) of the polynomials with these values (first axis) at the GLL nodes."""
    x, _ = gll_nodes_weights(p)
    return np.linalg.solve(legendre_vandermonde(x, p), values)


def legendre_to_nodal(coeffs: np.ndarray, p: int) -> np.ndarray:
    x, _ = gll_nodes_weights(p)
    return legendre_vandermonde(x, p) @ coeffs


@dataclass(frozen=True)
class Mesh:
    """E equal elements of order p on [t0, t1], with the matrices a spectral-element trainer needs."""

    t0: float
    t1: float
    E: int
    p: int

    def __post_init__(self):
        if self.E < 1 or self.p < 1 or not self.t1 > self.t0:
            raise ValueError(f"bad mesh: E={self.E}, p={self.p}, span=({self.t0}, {self.t1})")

    @property
    def n_nodes(self) -> int:
        return self.E * self.p + 1

    @property
    def h(self) -> float:
        return (self.t1 - self.t0) / self.E

    @cached_property
    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        return gll_nodes_weights(self.p)

    @cached_property
    def element_nodes(self) -> np.ndarray:
        """Global node index of each element's local nodes, shape (E, p+1): element e holds e*p .. e*p+p."""
        return np.arange(self.E)[:, None] * self.p + np.arange(self.p + 1)[None, :]

    @cached_property
    def times(self) -> np.ndarray:
        """Time of each global node, shape (n_nodes,)."""
        x, _ = self.reference
        local = self.t0 + self.h * (np.arange(self.E)[:, None] + (x[None, :] + 1) / 2)
        out = np.empty(self.n_nodes)
        out[self.element_nodes] = local
        return out

    @cached_property
    def derivative(self) -> np.ndarray:
        """G with (G c)[e*(p+1)+i] = dx/dt at local node i of element e, from the global nodal values c.

        Shape (E*(p+1), n_nodes): the element-wise derivative (2/h) D, scattered onto the global nodes. A shared
        node gets one derivative from each of its elements (the solution is only C0 there).
        """
        G = np.zeros((self.E, self.p + 1, self.n_nodes))
        for e in range(self.E):  # assembly happens once per mesh, not per training step
            G[e][:, self.element_nodes[e]] = self.local_derivative
        return G.reshape(self.E * (self.p + 1), self.n_nodes)

    @cached_property
    def gather(self) -> np.ndarray:
        """S with (S c) = the nodal values element by element, shape (E*(p+1), n_nodes)."""
        S = np.zeros((self.E * (self.p + 1), self.n_nodes))
        S[np.arange(S.shape[0]), self.element_nodes.ravel()] = 1.0
        return S

    @cached_property
    def quadrature(self) -> np.ndarray:
        """GLL weights times h/2 for each element-local node, shape (E*(p+1),): integrates over [t0, t1]."""
        _, w = self.reference
        return np.tile(w * self.h / 2, self.E)

    @cached_property
    def local_derivative(self) -> np.ndarray:
        """(2/h) D, shape (p+1, p+1): d/dt on one element's nodal values. G applies it element by element."""
        return differentiation_matrix(self.reference[0]) * (2.0 / self.h)

    def locate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each time, the global nodes of its element (len(t), p+1) and their Lagrange weights (len(t), p+1):
        x(t_k) = sum_j weights[k, j] * c[nodes[k, j]]. The sparse form of P: p+1 entries per row."""
        t = np.asarray(t, dtype=float)
        if t.min() < self.t0 - 1e-12 or t.max() > self.t1 + 1e-12:
            raise ValueError("interpolation times outside the mesh")
        e = np.clip(((t - self.t0) / self.h).astype(int), 0, self.E - 1)
        s = 2 * (t - (self.t0 + e * self.h)) / self.h - 1  # local coordinate in [-1, 1]
        return self.element_nodes[e], lagrange_matrix(self.reference[0], s)

    def interpolation(self, t: np.ndarray) -> np.ndarray:
        """P with (P c)_k = x(t_k) from the global nodal values c; shape (len(t), n_nodes)."""
        nodes, weights = self.locate(t)
        P = np.zeros((len(nodes), self.n_nodes))
        P[np.arange(len(nodes))[:, None], nodes] = weights
        return P

    def observation_blocks(self, t: np.ndarray) -> np.ndarray:
        """P'P in element form, shape (E, p+1, p+1): block e sums w w' over the observations located in element e
        (w their Lagrange weights), so `assemble` of the blocks is P'P."""
        nodes, weights = self.locate(t)
        blocks = np.zeros((self.E, self.p + 1, self.p + 1))
        np.add.at(blocks, nodes[:, 0] // self.p, weights[:, :, None] * weights[:, None, :])
        return blocks

    @cached_property
    def stiffness_block(self) -> np.ndarray:
        """G'WG in element form, shape (p+1, p+1), the same for every element: ((2/h) D)' diag(w h/2) (2/h) D."""
        return self.local_derivative.T @ (self.quadrature[: self.p + 1, None] * self.local_derivative)

    @cached_property
    def identity_blocks(self) -> np.ndarray:
        """The identity in element form, shape (E, p+1, p+1): a node two elements share gets half from each."""
        blocks = np.broadcast_to(np.eye(self.p + 1), (self.E, self.p + 1, self.p + 1)).copy()
        blocks[1:, 0, 0] = blocks[:-1, -1, -1] = 0.5
        return blocks

    def assemble(self, blocks: np.ndarray) -> np.ndarray:
        """The dense (..., n_nodes, n_nodes) matrix of element blocks (..., E, p+1, p+1), each added onto its
        element's nodes. Quadratic in the nodes: for tests and references, never for training."""
        blocks = np.asarray(blocks)
        out = np.zeros(blocks.shape[:-3] + (self.n_nodes, self.n_nodes))
        for e, nodes in enumerate(self.element_nodes):
            out[..., nodes[:, None], nodes[None, :]] += blocks[..., e, :, :]
        return out

    def fit(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Least-squares nodal values (..., nodes, state) of the mesh's C0 polynomial through observations y
        (..., len(t), state), in float64, unregularised (minimum norm where nodes outnumber observations)."""
        P = self.interpolation(t)
        flat = np.moveaxis(np.asarray(y, dtype=np.float64), -2, 0).reshape(len(t), -1)  # (obs, batch*state)
        c = np.linalg.lstsq(P, flat, rcond=None)[0]
        return np.moveaxis(c.reshape((self.n_nodes,) + np.shape(y)[:-2] + np.shape(y)[-1:]), 0, -2)


def representation_error(mesh: Mesh, t: np.ndarray, y: np.ndarray, t_fine: np.ndarray, y_fine: np.ndarray) -> float:
    """How well the mesh can hold a trajectory: the least-squares fit to observations y at t, evaluated at t_fine,
    as its maximum error against the clean trajectory y_fine there relative to y_fine's maximum (C5)."""
    fitted = mesh.interpolation(t_fine) @ mesh.fit(t, y)
    return float(np.abs(fitted - y_fine).max() / np.abs(y_fine).max())


class ElementSolver:
    """Solves A x = b for symmetric positive definite A given in element form, batched, on A's torch device.

    blocks: (batch, E, (p+1)k, (p+1)k), element e's block acting on global nodes e*p .. e*p+p (neighbours share one
    node), each node with `node` = k unknowns, ordered node by node (local node j's at j*k .. j*k+k-1), so A
    (batch, n, n) with n = (E*p+1)k is banded. Setup eliminates each element's p-1 interior nodes (static
    condensation: one batched (p-1)k x (p-1)k inverse per element) and leaves an SPD block tridiagonal Schur
    complement (k x k blocks) on the E+1 shared end nodes, which parallel cyclic reduction solves in
    ceil(log2(E+1)) vectorised steps, its multipliers precomputed. Each level of the reduction takes Schur
    complements of an SPD matrix, and every elimination is exact algebra: the result equals a dense solve to
    round-off (tests/test_spectral.py). Setup memory and per-solve work grow linearly with E (times log2(E) for
    the reduction's O(E) vector operations); nothing of size n x n is formed and no step leaves the device. Use
    float64 where A is ill-conditioned. With k = 1 (one state per matrix, the Picard c-step's) a node's block is a
    number: its products and quotients are elementwise, the numbers this solver always gave; k > 1 couples the
    states at a node (the Gauss-Newton c-step's, specbench.trainers.spectral).
    """

    def __init__(self, blocks: torch.Tensor, node: int = 1):
        batch, self.E, size, _ = blocks.shape
        self.node = k = node
        self.p = p = size // k - 1
        ends = [*range(k), *range(p * k, size)]  # the unknowns of the element's two end nodes
        a_ii = blocks[..., k:p * k, k:p * k]  # (batch, E, (p-1)k, (p-1)k): interior nodes, coupled within their element
        a_ib = blocks[..., k:p * k, :][..., ends]  # (batch, E, (p-1)k, 2k)
        a_bb = blocks[..., ends, :][..., ends]  # (batch, E, 2k, 2k)
        inv = torch.cholesky_inverse(torch.linalg.cholesky(a_ii))  # small SPD blocks: explicit, so a solve is a matmul
        self.K = inv @ a_ib  # (batch, E, (p-1)k, 2k): interior values per unit value at the element's two end nodes
        self.condense = torch.cat([inv, self.K.mT], -2)  # (batch, E, (p+1)k, (p-1)k): [A_II^-1; K'] on b_I at once
        schur = a_bb - a_ib.mT @ self.K  # (batch, E, 2k, 2k)
        left, right = slice(0, k), slice(k, 2 * k)
        diag = torch.zeros(batch, self.E + 1, k, k, dtype=blocks.dtype, device=blocks.device)
        diag[:, :-1] += schur[..., left, left]
        diag[:, 1:] += schur[..., right, right]
        zero = torch.zeros_like(diag[:, :1])
        lower = torch.cat([zero, schur[..., right, left]], 1)  # lower[i]: coupling of end node i to i-1 (none at 0)
        upper = torch.cat([schur[..., left, right], zero], 1)  # upper[i]: to i+1
        one = torch.eye(k, dtype=blocks.dtype, device=blocks.device)  # where there is no row: never used
        self.levels = []  # (stride, multiplier of row i - stride, of row i + stride), each (batch, E+1, k, k)
        stride, n = 1, self.E + 1
        while stride < n:
            below, above = shifted(diag, stride, one), shifted(diag, -stride, one)
            k_lo, k_up = self.over(lower, below), self.over(upper, above)
            lower, upper, diag = (self.times(k_lo, -shifted(lower, stride, zero[0, 0])),
                                  self.times(k_up, -shifted(upper, -stride, zero[0, 0])),
                                  diag - self.times(k_lo, shifted(upper, stride, zero[0, 0]))
                                  - self.times(k_up, shifted(lower, -stride, zero[0, 0])))
            self.levels.append((stride, k_lo, k_up))
            stride *= 2
        self.inv_diag = self.over(one.expand_as(diag), diag)  # (batch, E+1, k, k): the reduced system is diagonal

    def times(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a b for node blocks a (..., k, k) and b (..., k, m)."""
        return a * b if self.node == 1 else a @ b

    def over(self, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """a d^-1 for node blocks (..., k, k)."""
        return a / d if self.node == 1 else torch.linalg.solve(d, a, left=False)

    def less(self, g: torch.Tensor, a: torch.Tensor, x: torch.Tensor, b: torch.Tensor, y: torch.Tensor):
        """g - a x - b y for node blocks; with k = 1 two fused operations (addcmul), as this solver always took it."""
        return torch.addcmul(g, a, x, value=-1).addcmul_(b, y, value=-1) if self.node == 1 else g - a @ x - b @ y

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        """x with A x = b, for b of shape (batch, (E*p+1)k, m): m right-hand sides per matrix, node by node."""
        E, p, k = self.E, self.p, self.node
        batch, n, m = b.shape
        local = b[:, : E * p * k].reshape(batch, E, p * k, m)  # node e*p + j at j*k; j = 0 is the left end node
        z = self.condense @ local[:, :, k:]  # (batch, E, (p+1)k, m): A_II^-1 b_I, then K' b_I at the two end nodes
        g = torch.cat([local[:, :, :k], b[:, None, -k:]], 1)  # (batch, E+1, k, m): the end nodes' right side
        g[:, :-1] -= z[:, :, (p - 1) * k: p * k]
        g[:, 1:] -= z[:, :, p * k:]
        for stride, k_lo, k_up in self.levels:
            padded = torch.nn.functional.pad(g, (0, 0, 0, 0, stride, stride))
            g = self.less(g, k_lo, padded[:, : E + 1], k_up, padded[:, 2 * stride:])
        ends = self.times(self.inv_diag, g)  # (batch, E+1, k, m)
        inner = z[:, :, : (p - 1) * k] - self.K @ torch.cat([ends[:, :-1], ends[:, 1:]], 2)  # (batch, E, (p-1)k, m)
        x = torch.cat([ends[:, :-1], inner], 2).reshape(batch, E * p * k, m)
        return torch.cat([x, ends[:, -1]], 1)


def shifted(v: torch.Tensor, by: int, fill: torch.Tensor) -> torch.Tensor:
    """v (batch, m, ...) moved `by` places along its second axis (out[i] = v[i - by]), the gap filled with `fill`
    (v's trailing shape)."""
    pad = fill.expand_as(v[:, : abs(by)])
    return torch.cat([pad, v[:, :-by]], 1) if by > 0 else torch.cat([v[:, -by:], pad], 1)
