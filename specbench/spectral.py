"""Gauss–Lobatto–Legendre (GLL) spectral-element numerics, pure numpy (float64).

A trajectory on [t0, t1] is split into E equal elements; on each, x(t) is the degree-p polynomial through its
values at the p+1 GLL nodes. Neighbouring elements share their end node (C0 continuity), so one trajectory has
E*p + 1 global nodes. References: Canuto, Hussaini, Quarteroni & Zang, "Spectral Methods" (2006), ch. 2;
Quaglino et al., "SNODE", ICLR 2020, sec. 3.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
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
