"""SNODE: spectral-element training of a neural ODE, no ODE solve inside training (Quaglino et al., 2020).

Each training trajectory is a C0 piecewise polynomial: E elements of order p on GLL nodes, values c of shape
(traj, node, state). The objective is

    J(c, theta) = data(c) + rho * dyn(c, theta)
    data = mean over (traj, obs, state) of ((P c - y) / std)^2
    dyn  = sum over (traj, element nodes, state) of w * ((G c - f_theta(S c)) / deriv_std)^2 / (traj * T * state)

with P the interpolation matrix to the observation times, G the element-wise derivative (2/h) D, S the gather of
element-local values and w the GLL quadrature weights times h/2 (the discrete weak form of the ODE residual).
Coordinate descent alternates
  (a) theta: Adam steps on dyn with c fixed — a plain regression over all nodes of all trajectories at once;
  (b) c: the minimiser of J with f_theta frozen at the current c, plus a proximal term mu ||c - c_old||^2
      (a Picard least-squares step). Its normal matrix A = P'P + lam G'WG + mu I is the same for every trajectory,
      so it is factored once per state and each step is one pair of batched triangular solves: well scaled by
      construction, unlike a gradient step on c, which the p^2/h size of D turns into noise.
P, G and S are applied in their element-local form (gathers and one small matrix per element), so a step's cost
and memory grow linearly with the number of nodes, except for the dense factor of A: its nodes^2 floats per state
and the two triangular solves (O(nodes^2) per step) are what remain; a banded factor would remove them.
c starts from the same least-squares fit with f = 0 and a small smoothing weight. `spectral-2stage` keeps c there
(gradient matching / two-stage collocation). Every step is batched over trajectories x elements x nodes.
"""
from __future__ import annotations

import numpy as np
import torch

from specbench.spectral import Mesh
from specbench.trainers.base import Trainer


class Spectral(Trainer):
    summary = "SNODE: Legendre spectral elements, weak-form residual, coordinate descent (no ODE solve)"
    role = "candidate"
    tuning_grid = {"lr": [3e-3, 1e-2, 3e-2], "rho": [0.03, 0.3]}
    defaults = {
        "E": "auto",  # elements per trajectory; auto: about 0.75 global nodes per observation (see auto_elements)
        "p": 6,  # Legendre order per element
        "rho": 1.0,  # weight of the dynamics residual against the data term
        "lr": 1e-2,  # Adam learning rate of the theta regression
        "theta_steps": 1,  # Adam steps on theta per iteration
        "update_coefficients": True,  # False: the two-stage ablation
        "prox": 1.0,  # proximal weight mu of the c-step, relative to the data term's diagonal
        "init_smoothing": 1e-4,  # derivative penalty of the initial least-squares fit, relative to the data
    }

    def __init__(self, system, data, config=None, seed=0, device="cpu"):
        super().__init__(system, data, config, seed, device)
        cfg = self.config
        t = data.t
        if cfg["E"] == "auto":
            cfg["E"] = auto_elements(len(t), int(cfg["p"]))
        self.mesh = mesh = Mesh(float(t[0]), float(t[-1]), int(cfg["E"]), int(cfg["p"]))
        # The operators are applied in their sparse, element-local form (O(nodes) per step, nothing of size
        # nodes x nodes kept but the factor below): S c is a gather, G c one (p+1)x(p+1) product per element,
        # P c a weighted gather of p+1 nodes per observation.
        self.idx = torch.as_tensor(mesh.element_nodes.ravel(), device=self.device)  # (M,)
        self.D = self.tensor(mesh.local_derivative)  # (p+1, p+1)
        self.D64 = self.D.double()  # the c-step's float64 copy, made once rather than every step
        obs_nodes, obs_weights = mesh.locate(t)
        self.obs_idx = torch.as_tensor(obs_nodes, device=self.device)  # (obs, p+1)
        self.obs_w = self.tensor(obs_weights)[None, :, :, None]  # (1, obs, p+1, 1)
        self.w = self.tensor(mesh.quadrature)[None, :, None]  # (1, M, 1)
        self.y = self.tensor(data.train)  # (traj, obs, state)
        self.std = self.tensor(self.scales["std"])
        self.deriv_std = self.tensor(self.scales["deriv_std"])
        n_traj, n_obs, dim = data.train.shape
        span = float(t[-1] - t[0])
        self.dyn_norm = n_traj * span * dim
        # lam_s puts rho * dyn and data on the same scale per state once both are multiplied by std_s^2 * n_obs.
        ratio = n_obs * self.scales["std"] ** 2 / (span * self.scales["deriv_std"] ** 2)  # (state,)
        P, G, w = mesh.interpolation(t), mesh.derivative, mesh.quadrature  # dense, for the normal matrices only
        PtP, GtWG = P.T @ P, G.T @ (w[:, None] * G)
        del P, G
        self.mu = float(cfg["prox"]) * np.trace(PtP) / mesh.n_nodes
        self.lam = self.tensor(cfg["rho"] * ratio).double()  # (state,)
        # One Cholesky factor per state of A_s = P'P + lam_s G'WG + mu I, float64 (G'WG grows like (p^2/h)^2).
        A = PtP[None] + (cfg["rho"] * ratio)[:, None, None] * GtWG[None] + self.mu * np.eye(mesh.n_nodes)[None]
        self.chol = torch.linalg.cholesky(torch.as_tensor(A, device=self.device))  # (state, nodes, nodes)
        del A
        self.PtY = self.scatter(self.y.double()[:, :, None, :] * self.obs_w.double(), self.obs_idx)  # (state, traj, n)
        A0 = PtP[None] + (cfg["init_smoothing"] * ratio)[:, None, None] * GtWG[None]
        c0 = torch.cholesky_solve(self.PtY.transpose(1, 2),
                                  torch.linalg.cholesky(torch.as_tensor(A0, device=self.device)))
        self.c = c0.permute(2, 1, 0).float().contiguous()  # (traj, nodes, state)
        with torch.no_grad():
            self.data_fit = self.data_loss().item()  # constant while c is frozen
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg["lr"])

    def scatter(self, local: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """Sum element-local values (traj, ..., state) onto the global nodes `nodes` (...): the transpose of a
        gather. Returns (state, traj, n_nodes) in local's dtype, the layout of the c-step's right-hand side."""
        b, s = local.shape[0], local.shape[-1]
        out = torch.zeros(b, self.mesh.n_nodes, s, dtype=local.dtype, device=self.device)
        out.index_add_(1, nodes.reshape(-1), local.reshape(b, -1, s))
        return out.permute(2, 0, 1)

    def nodes(self):
        """Element-local values and time derivatives of the current trajectories, each (traj, M, state)."""
        b, s = self.c.shape[0], self.c.shape[-1]
        x = self.c[:, self.idx]  # (traj, M, state)
        local = x.view(b, self.mesh.E, self.mesh.p + 1, s)
        return x, torch.einsum("ij,bejs->beis", self.D, local).reshape(x.shape)

    def residual_loss(self, x, dxdt) -> torch.Tensor:
        r = (dxdt - self.model(None, x)) / self.deriv_std
        return (self.w * r ** 2).sum() / self.dyn_norm

    def at_observations(self) -> torch.Tensor:
        """x at the observation times, (traj, obs, state): P c as a weighted gather."""
        return (self.c[:, self.obs_idx] * self.obs_w).sum(2)

    def data_loss(self) -> torch.Tensor:
        return (((self.at_observations() - self.y) / self.std) ** 2).mean()

    def _step(self) -> float:
        """One sweep of coordinate descent; returns J at the start of the sweep (no extra network evaluation)."""
        x, dxdt = self.nodes()
        for k in range(int(self.config["theta_steps"])):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.residual_loss(x, dxdt)
            loss.backward()
            self.optimizer.step()
            if k == 0:
                dyn = loss.item()
        if self.config["update_coefficients"]:
            with torch.no_grad():
                data = self.data_loss().item()
            self.update_coefficients(x)
        else:
            data = self.data_fit
        return data + self.config["rho"] * dyn

    @torch.no_grad()
    def update_coefficients(self, x: torch.Tensor) -> None:
        """c <- argmin_c data(c) + rho * ||G c - f(x)||_W^2 + mu ||c - c_old||^2, f frozen at the current x."""
        f = self.model(None, x)  # (traj, M, state)
        b, s = f.shape[0], f.shape[-1]
        wf = (self.w * f).double().view(b, self.mesh.E, self.mesh.p + 1, s)
        GtWf = self.scatter(torch.einsum("ij,beis->bejs", self.D64, wf), self.idx)  # G'W f: (state, traj, nodes)
        rhs = self.PtY + self.lam[:, None, None] * GtWf + self.mu * self.c.double().permute(2, 0, 1)
        # two triangular solves rather than cholesky_solve, which copies the whole factor on every call
        half = torch.linalg.solve_triangular(self.chol, rhs.transpose(1, 2), upper=False)
        c = torch.linalg.solve_triangular(self.chol.mT, half, upper=True)  # (state, nodes, traj)
        self.c = c.permute(2, 1, 0).float().contiguous()


def auto_elements(n_obs: int, order: int) -> int:
    """E such that the mesh has about 0.75 global nodes per observation: enough to follow the data, few enough
    that the initial least-squares fit is determined by the data rather than by its smoothing term."""
    return max(1, round(0.75 * (n_obs - 1) / order))


class SpectralTwoStage(Spectral):
    summary = "ablation: SNODE with coefficients frozen at the least-squares fit (two-stage collocation)"
    role = "ablation"
    tuning_grid = {"lr": [3e-3, 1e-2, 3e-2], "p": [4, 8]}
    defaults = {**Spectral.defaults, "update_coefficients": False}
