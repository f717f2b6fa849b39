"""A mid-size coupled network: N damped Duffing oscillators with diffusive coupling on a fixed sparse graph.

State (q_1..q_N, p_1..p_N), 2N states. For oscillator i with neighbours j on the graph G:

    dq_i/dt = p_i
    dp_i/dt = -omega_i^2 q_i - beta q_i^3 - gamma p_i + kappa * sum_{j ~ i} (q_j - q_i)

G is a ring (each node linked to the next) plus N // 4 chords between random node pairs; G and the natural
frequencies omega_i in [0.8, 1.2] are drawn once from `graph_seed`, independent of the data seed.

Trajectories stay bounded: the energy
    H = sum_i (p_i^2/2 + omega_i^2 q_i^2/2 + beta q_i^4/4) + kappa/2 sum_{edges} (q_i - q_j)^2
has dH/dt = -gamma sum_i p_i^2 <= 0, and H bounds every state from above.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specbench.systems.base import System, const, regimes


@dataclass
class Network(System):
    n: int = 16
    beta: float = 0.5
    gamma: float = 0.05
    kappa: float = 0.5
    graph_seed: int = 1234
    name: str = "network"
    dim: int = 0  # set from n
    t_span: float = 10.0
    test_horizon: float = 10.0
    regimes: dict = regimes(101, 41)
    model: dict = field(default_factory=lambda: {"width": 128, "depth": 2})

    def __post_init__(self):
        if self.n < 3:
            raise ValueError("network needs n >= 3 oscillators")
        self.dim = 2 * self.n
        rng = np.random.default_rng(self.graph_seed)
        self.omega = rng.uniform(0.8, 1.2, self.n)
        edges = {(i, (i + 1) % self.n) for i in range(self.n)}
        while len(edges) < self.n + self.n // 4:
            i, j = rng.choice(self.n, 2, replace=False)
            if (i, j) not in edges and (j, i) not in edges:
                edges.add((int(i), int(j)))
        self.edges = sorted(edges)
        adjacency = np.zeros((self.n, self.n))
        for i, j in self.edges:
            adjacency[i, j] = adjacency[j, i] = 1.0
        # Graph Laplacian L = D - A: the coupling force is -kappa L q.
        self.laplacian = np.diag(adjacency.sum(1)) - adjacency

    @property
    def params(self):
        return {"n": self.n, "beta": self.beta, "gamma": self.gamma, "kappa": self.kappa,
                "graph_seed": self.graph_seed}

    def f(self, x, xp):
        q, p = x[..., : self.n], x[..., self.n:]
        omega2 = const(self.omega ** 2, x)
        force = -omega2 * q - self.beta * q ** 3 - self.gamma * p - self.kappa * (q @ const(self.laplacian, x))
        return xp.concatenate([p, force], -1)

    def energy(self, x: np.ndarray) -> np.ndarray:
        """H(x), shape (...,): non-increasing along every trajectory."""
        q, p = x[..., : self.n], x[..., self.n:]
        node = 0.5 * p ** 2 + 0.5 * self.omega ** 2 * q ** 2 + 0.25 * self.beta * q ** 4
        coupling = 0.5 * self.kappa * np.einsum("...i,ij,...j->...", q, self.laplacian, q)
        return node.sum(-1) + coupling

    def sample_initial(self, rng, n):
        return rng.uniform(-1.5, 1.5, size=(n, self.dim))
