"""VF-NODE: the ODE in weak form against sine test functions, integrals by quadrature of a spline through the
observations (Zhao et al., "Accelerating Neural ODEs: A Variational Formulation-based Approach", ICLR 2025).

For each training trajectory on [t0, t0 + T] and test functions phi_k(t) = sqrt(2/T) sin(k pi (t - t0) / T),
k = 1..K, which vanish at both ends, integration by parts turns int phi_k (x' - f_theta(x)) dt = 0 into

    r_k = int phi_k' x dt + int phi_k f_theta(x) dt = 0,

with no derivative of the data. Both integrals are taken exactly over the natural cubic spline through the values
at the observation times (of y in the first, of f_theta(y) in the second, as the paper's code does), so they are
two fixed linear maps of the observations: r = B y + A f_theta(y), A and B of shape (K, times). f_theta is
evaluated at the observations only; nothing is integrated in time. The phi_k are orthonormal, so sum_k r_k^2 is
the squared L2 norm of the residual x' - f_theta(x) projected onto the first K sines, and the loss

    loss = mean over (traj, state) of sum_k (r_k / deriv_std)^2 / T

is the mean squared residual over the span in the units the other trainers use. Adam on theta, all trajectories
per step. With the natural end conditions the quadrature errs by O(h^3) (h the sampling interval): the spline's
error is O(h^2) within a few intervals of each end, where phi_k' does not vanish; a not-a-knot spline would be
O(h^5) on smooth data, but natural splines are the paper's choice.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from scipy.linalg import solve_banded

from specbench.trainers.base import LR, SCHEDULE, Trainer
from specbench.trainers.settings import Limit, Setting

INTERVALS = Limit("the observation intervals per trajectory", lambda shape, _: shape.observations - 1)


def sine_test_maps(t: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, B), float64, each (K, len(t)): for values v at the times t, A @ v = int phi_k s dt and
    B @ v = int phi_k' s dt over [t[0], t[-1]], s the natural cubic spline through (t, v) and
    phi_k = sqrt(2/T) sin(k pi (t - t[0]) / T). Gauss-Legendre on each interval against each of the spline's four
    cardinal pieces, with 10 + theta nodes where theta = K pi max(h) / T is the largest phase phi_K turns through in
    one interval: exact to round-off (the rule's error falls like (theta / 2)^(2 nodes) / (2 nodes)!).

    On interval j (u = (t - t_j) / h_j in [0, 1]) the spline is (1-u) v_j + u v_{j+1} + h_j^2/6 (((1-u)^3 - (1-u))
    M_j + (u^3 - u) M_{j+1}), its second derivatives M zero at the ends and T_M M = R v inside (T_M tridiagonal).
    So int g s = Wv v + Wm M = (Wv + Wm T_M^-1 R) v: time and memory linear in K x len(t), no (times x times)
    matrix."""
    t = np.asarray(t, dtype=float)
    n, span = len(t), float(t[-1] - t[0])
    h = np.diff(t)  # (n-1,)
    x, w = np.polynomial.legendre.leggauss(10 + int(np.ceil(K * np.pi * h.max() / span)))
    u, w = (x + 1) / 2, w / 2  # on [0, 1]
    omega = np.pi * np.arange(1, K + 1) / span  # (K,)
    phase = omega[:, None, None] * (t[:-1, None] - t[0] + h[:, None] * u)[None]  # (K, n-1, points)
    scale = np.sqrt(2.0 / span)
    g = np.stack([scale * np.sin(phase), scale * omega[:, None, None] * np.cos(phase)])  # phi, phi': (2, K, n-1, q)
    cardinal = np.stack([1 - u, u, (1 - u) ** 3 - (1 - u), u ** 3 - u])  # (4, q)
    moments = np.einsum("fkjq,cq,q->cfkj", g, cardinal, w) * h  # (4, 2, K, n-1): h_j int_0^1 g c du
    moments[2:] *= h ** 2 / 6
    maps = np.zeros((2, K, n))
    maps[..., :-1] += moments[0]
    maps[..., 1:] += moments[1]
    if n > 2:
        wm = np.zeros((2, K, n))  # the weights of M
        wm[..., :-1] += moments[2]
        wm[..., 1:] += moments[3]
        inner = n - 2
        banded = np.zeros((3, inner))  # T_M in banded form: diagonal (h_{i-1} + h_i) / 3, off-diagonals h_i / 6
        banded[1] = (h[:-1] + h[1:]) / 3
        banded[0, 1:] = banded[2, :-1] = h[1:-1] / 6
        z = solve_banded((1, 1), banded, wm[..., 1:-1].reshape(-1, inner).T).T.reshape(2, K, inner)  # Wm T_M^-1
        # R v at interior node i: (v_{i+1} - v_i) / h_i - (v_i - v_{i-1}) / h_{i-1}
        maps[..., :-2] += z / h[:-1]
        maps[..., 1:-1] -= z * (1 / h[:-1] + 1 / h[1:])
        maps[..., 2:] += z / h[1:]
    return maps[0], maps[1]


class VFNode(Trainer):
    summary = "VF-NODE: weak form against sine test functions, spline quadrature of the data (no ODE solve)"
    role = "rival"
    solves_ode = False
    # The learning rate against K, the number of test functions: how fine a scale of the residual the loss sees
    # (the paper's code defaults to 80, its examples sample 100 times).
    # Last session's winners sat on the low edges (lr 3e-3 on three systems, K = 20 on two): the grid goes past them.
    settings = (
        replace(LR, grid=(1e-3, 3e-3, 1e-2, 3e-2)),
        Setting("K", 80, "test functions per trajectory (finer sines than the observations' spacing alias on the "
                "samples)", int, low=1, limit=INTERVALS, grid=(10, 20, 40, 80), scale="log"),
        SCHEDULE,
    )

    def __init__(self, system, data, config=None, seed=0, device="cpu"):
        super().__init__(system, data, config, seed, device)
        cfg = self.config
        n_traj, _, dim = data.train.shape
        cfg["K"] = self.used("K")  # at most the observation intervals
        span = float(data.t[-1] - data.t[0])
        A, B = sine_test_maps(data.t, cfg["K"])
        self.y = self.tensor(data.train)  # (traj, obs, state)
        self.A = self.tensor(A)  # (K, obs)
        self.By = self.tensor(np.einsum("kn,bns->bks", B, data.train))  # (traj, K, state): fixed, as the data are
        # The loss's mean over trajectories and states and its scales, folded into one weight per state.
        self.weight = self.tensor(1.0 / (self.scales["deriv_std"] ** 2 * span * n_traj * dim))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg["lr"])

    def residual(self, f: torch.Tensor) -> torch.Tensor:
        """r = B y + A f, (traj, K, state), from f_theta at the observations f (traj, obs, state)."""
        return self.By + torch.einsum("kn,bns->bks", self.A, f)

    def loss(self) -> torch.Tensor:
        return (self.weight * self.residual(self.model(None, self.y)) ** 2).sum()

    def _step(self) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss()
        loss.backward()
        self.optimizer.step()
        return loss.item()
