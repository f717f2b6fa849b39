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
      so it is factored once per state and each step is one batched Cholesky solve: well scaled by construction,
      unlike a gradient step on c, which the p^2/h size of D turns into noise.
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
        P = mesh.interpolation(t)  # (obs, nodes)
        G, S, w = mesh.derivative, mesh.gather, mesh.quadrature  # (M, nodes), (M, nodes), (M,)
        self.P, self.G, self.S = self.tensor(P), self.tensor(G), self.tensor(S)
        self.G64 = self.G.double()  # the c-step's float64 copy, made once rather than every step
        self.w = self.tensor(w)[None, :, None]  # (1, M, 1)
        self.y = self.tensor(data.train)  # (traj, obs, state)
        self.std = self.tensor(self.scales["std"])
        self.deriv_std = self.tensor(self.scales["deriv_std"])
        n_traj, n_obs, dim = data.train.shape
        span = float(t[-1] - t[0])
        self.dyn_norm = n_traj * span * dim
        # lam_s puts rho * dyn and data on the same scale per state once both are multiplied by std_s^2 * n_obs.
        ratio = n_obs * self.scales["std"] ** 2 / (span * self.scales["deriv_std"] ** 2)  # (state,)
        PtP, GtWG = P.T @ P, G.T @ (w[:, None] * G)
        self.mu = float(cfg["prox"]) * np.trace(PtP) / mesh.n_nodes
        self.lam = self.tensor(cfg["rho"] * ratio).double()  # (state,)
        # One Cholesky factor per state of A_s = P'P + lam_s G'WG + mu I, float64 (G'WG grows like (p^2/h)^2).
        A = PtP[None] + (cfg["rho"] * ratio)[:, None, None] * GtWG[None] + self.mu * np.eye(mesh.n_nodes)[None]
        self.chol = torch.linalg.cholesky(torch.as_tensor(A, device=self.device))  # (state, nodes, nodes)
        self.PtY = torch.einsum("on,bos->sbn", self.P.double(), self.y.double())  # (state, traj, nodes)
        A0 = PtP[None] + (cfg["init_smoothing"] * ratio)[:, None, None] * GtWG[None]
        c0 = torch.cholesky_solve(self.PtY.transpose(1, 2),
                                  torch.linalg.cholesky(torch.as_tensor(A0, device=self.device)))
        self.c = c0.permute(2, 1, 0).float().contiguous()  # (traj, nodes, state)
        with torch.no_grad():
            self.data_fit = self.data_loss().item()  # constant while c is frozen
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg["lr"])

    def nodes(self):
        """Element-local values and time derivatives of the current trajectories, each (traj, M, state)."""
        return self.S @ self.c, self.G @ self.c

    def residual_loss(self, x, dxdt) -> torch.Tensor:
        r = (dxdt - self.model(None, x)) / self.deriv_std
        return (self.w * r ** 2).sum() / self.dyn_norm

    def data_loss(self) -> torch.Tensor:
        return (((self.P @ self.c - self.y) / self.std) ** 2).mean()

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
        GtWf = torch.einsum("mn,bms->sbn", self.G64, (self.w * f).double())  # (state, traj, nodes)
        rhs = self.PtY + self.lam[:, None, None] * GtWf + self.mu * self.c.double().permute(2, 0, 1)
        c = torch.cholesky_solve(rhs.transpose(1, 2), self.chol)  # (state, nodes, traj)
        self.c = c.permute(2, 1, 0).float().contiguous()


def auto_elements(n_obs: int, order: int) -> int:
    """E such that the mesh has about 0.75 global nodes per observation: enough to follow the data, few enough
    that the initial least-squares fit is determined by the data rather than by its smoothing term."""
    return max(1, round(0.75 * (n_obs - 1) / order))


class SpectralTwoStage(Spectral):
    summary = "ablation: SNODE with coefficients frozen at the least-squares fit (two-stage collocation)"
    defaults = {**Spectral.defaults, "update_coefficients": False}
