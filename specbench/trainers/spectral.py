"""SNODE: spectral-element training of a neural ODE, no ODE solve inside training (Quaglino et al., 2020).

Each training trajectory is a C0 piecewise polynomial: E elements of order p on GLL nodes, values c of shape
(traj, node, state). The objective is

    J(c, theta) = data(c) + rho * dyn(c, theta)
    data = mean over (traj, obs, state) of ((P c - y) / std)^2
    dyn  = sum over (traj, element nodes, state) of w * ((G c - f_theta(S c)) / deriv_std)^2 / (traj * T * state)

with P the interpolation matrix to the observation times, G the element-wise derivative (2/h) D, S the gather of
element-local values and w the GLL quadrature weights times h/2 (the discrete weak form of the ODE residual).
Coordinate descent alternates
  (a) theta: Adam steps on dyn with c fixed — a plain regression over all nodes of all trajectories at once, or
      over a mini-batch of `elements_per_step` elements drawn from all trajectories (an epoch's batches
      partition the elements, and a batch's loss is scaled so that their mean over an epoch is the full one);
  (b) c: the minimiser of J with f_theta frozen at the current c, plus a proximal term mu ||c - c_old||^2
      (a Picard least-squares step). Its normal matrix A = P'P + rho G'WG + mu I is the same for every trajectory
      and banded (an element couples only its own p+1 nodes), so it is held in element form, one block per
      element and state, and solved by `ElementSolver` (static condensation onto the element end nodes, then
      cyclic reduction) in float64: well scaled by construction, unlike a gradient step on c, which the p^2/h size
      of D turns into noise. The c-step stays global, and is exact; with mini-batches it is taken a chunk of
      trajectories at a time (the normal equations do not couple trajectories), each chunk's f_theta a
      mini-batch of elements per network call, so neither the network's activations nor the c-step's temporaries
      outgrow a mini-batch's whatever the horizon (what still grows with it is c and the data in node form: a few
      floats per node).
`sweep` decides which f_theta the c-step sees. "jacobi" (the default) takes the theta step's own forward pass, from
before the Adam update, so an iteration makes one network pass; "gauss-seidel" evaluates f_theta again after the
update (two passes). Both took about as many iterations to the target on cubic-oscillator and Lotka-Volterra, so
the cheaper iteration is the default (docs/design.md). With mini-batches the theta step's forward covers one
batch only, so both sweeps evaluate f_theta for the c-step; Jacobi takes the c-step first, with the theta step's
batch gathered from c before it changes, so each update still sees the other's old value.
Every operator is applied in element-local form (S a strided view of c, G one (p+1)x(p+1) product per element,
P a weighted gather of p+1 nodes per observation, A as blocks), so a step's time and memory grow linearly with the
number of nodes, and nothing of size nodes x nodes is ever formed.
c starts from the same least-squares fit with f = 0 and a small smoothing weight. `spectral-2stage` keeps c there
(gradient matching / two-stage collocation). Every step is batched over trajectories x elements x nodes.

On measurements with inputs and irregular times (specbench.systems.datasets.NEEDS; `spectral` only: the two-stage
ablation keeps to one grid) each trajectory has its own mesh over its own span, with the same E and p for all (E from
the most observations), so c is still (traj, nodes, state) and only h, hence G and W, differ by trajectory. The data
term is on the outputs at their own times, wherever they fall in an element (P per trajectory); the input enters
f_theta(x, u) with u held as declared at each element's nodes, an element's end nodes reading the input from inside
their element (a zero-order hold's jump on an element boundary is the element's own). The c-step's normal matrix
now differs by trajectory and state (A_bs = [s measured] P_b'P_b + rho_bs G_b'W_bG_b + mu I, the objective's means
taken over every observation of every trajectory), so it is solved for every trajectory at once.

A hidden state (an unmeasured one: no data term, started at its first guess: Trainer.hidden_start) is seen only
through the residual, and the Picard c-step, with f_theta frozen at the old c, sees it only through its own
residual, never through the observed states' equations it enters: on the true field of x' = Ax + Bu seen through one
of its two states its error grew without bound over the sweeps (17 after 100, 9e5 after 400, rho = prox = 1). So
where a state is hidden the c-step is a Gauss-Newton one (`linearised_step`): f_theta linearised at the old c, f(S
c) ~ f(S c_old) + J (S c - S c_old) with J its Jacobian in the state at each node (one forward-mode pass,
torch.func), so the residual G c - f(S c_old) - J (S c - S c_old) couples the states at each node. Its normal
matrix, in z = c / std (each state in its own scale: the matrix stays symmetric), is P'P (outputs) + sum_s M_s'
rho_s W M_s + mu I, with M_s z = G z_s - sum_a J_sa S z_a the linearised residual of state s (J scaled to z): still
element-local, but one block of state*(p+1) unknowns per element and trajectory; `ElementSolver` with a node of
`state` unknowns condenses it onto the end nodes as before and reduces a block tridiagonal system of state x state
blocks, in float64, factored anew at every step (J changes with c and theta).
With the proximal term it is a Levenberg-Marquardt step, and its fixed points are the stationary points of the
c-objective itself. On that truth test it finds the hidden state to 3e-6 in 200 sweeps. Jacobi takes the c-step
first here (as with mini-batches), the theta step on the c before it. With every state measured the Picard c-step
stays: its matrix is constant, factored once, and reached the truth to 1e-7 on the same test; the Gauss-Newton
step would cost a Jacobian pass and a factorisation per step for a gain not measured there, and those runs (the
work gate, the committed reports) stay as they were, bit for bit.
"""
from __future__ import annotations

import numpy as np
import torch

from specbench.numerics.gll import ElementSolver, Mesh
from specbench.systems.measurements import hold_input
from specbench.trainers.base import LR, SCHEDULE, Trainer
from specbench.trainers.settings import Limit, Setting, amend


# A theta step on every element is "all": the limit is one less than the elements of the data's meshes.
ELEMENTS = Limit("the elements of the data's meshes",
                 lambda shape, cfg: shape.trajectories * elements(cfg, shape.observations) - 1, beyond="all")
# The mini-batches tuning extends a grid along: up to every element.
BATCHES = (4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, "all")


class Spectral(Trainer):
    summary = "SNODE: Legendre spectral elements, weak-form residual, coordinate descent (no ODE solve)"
    role = "candidate"
    # What decides spectral's speed: the learning rate, rho (the weight of the residual in the c-step), the mesh: its
    # density (global nodes per observation) and the Legendre order p, elements_per_step (the counterpart of the
    # solvers' batch: the data one theta step sees; 32 elements of 6 observation intervals each at the default
    # density is about what a solver's batch of 16 segments of 10-40 steps sees) and the schedule.
    settings = (
        Setting("E", "auto", "elements per trajectory; auto: from the density (auto_elements)", int, low=1,
                words=("auto",)),
        Setting("density", 0.75, "global nodes per observation, when E is auto", low=0.01, reach=(0.01, 100.0),
                grid=(0.5, 0.75, 1.5), scale="log"),
        Setting("p", 6, "Legendre order per element", int, low=1, reach=(1, 24), grid=(4, 6, 8), scale="linear"),
        Setting("rho", 1.0, "weight of the dynamics residual against the data term in the c-step", low=0.0,
                reach=(1e-4, 1e4), grid=(0.01, 0.1, 1.0), scale="log"),
        LR,
        Setting("theta_steps", 1, "Adam steps on theta per iteration", int, low=1),
        Setting("update_coefficients", True, "the c-step runs (spectral-2stage is the trainer without it)", bool,
                choices=(True,)),
        Setting("prox", 1.0, "proximal weight mu of the c-step, relative to the data term's diagonal", low=0.0),
        Setting("init_smoothing", 1e-4, "derivative penalty of the initial least-squares fit, relative to the data",
                low=0.0),
        Setting("sweep", "jacobi", "f_theta the c-step sees: theta before its update (jacobi) or after it "
                "(gauss-seidel)", str, choices=("jacobi", "gauss-seidel")),
        Setting("elements_per_step", "all", "elements (of all trajectories together) per theta step", int, low=1,
                words=("all",), limit=ELEMENTS, grid=("all", 32), scale="ladder", ladder=BATCHES),
        SCHEDULE,
    )
    # An element costs the c-step about (p+1) x state x 10 float64 temporaries and the theta step (p+1) x width x 5
    # float32 activations, some 8x more: a chunk of 8 batches' elements holds about what one theta step does. A chunk
    # of one batch's elements made a mini-batched iteration on Lotka-Volterra (dense) cost 2x a full one (16 chunks
    # of one trajectory, a solve and a network call each); with 8, 2 chunks.
    C_STEP_BATCHES = 8
    # `observe`: a mesh per trajectory; hidden states by the Gauss-Newton c-step (`linearised_step`), which sees
    # f's dependence on c: the Picard one, f frozen at the old c, never saw a hidden state through the observed
    # states' equations it enters (the module's docstring).
    learns_from = frozenset({"inputs", "hidden", "irregular"})

    def __init__(self, system, data, config=None, seed=0, device="cpu"):
        super().__init__(system, data, config, seed, device)
        self.u_nodes = None  # the input at every element-local node (traj, E, p+1, input), on measurements
        self.linearised = False  # the c-step linearises f_theta in c (Gauss-Newton): where a state is hidden
        if self.general:
            self.observe()
            return
        cfg = self.config
        t = data.t
        cfg["E"] = elements(cfg, len(t))
        self.mesh = mesh = Mesh(float(t[0]), float(t[-1]), cfg["E"], cfg["p"])
        n_traj, n_obs, dim = data.train.shape
        n, p1 = mesh.n_nodes, mesh.p + 1
        self.shape = (n_traj, n, dim)  # of c
        self.batching(n_traj)
        self.D = self.tensor(mesh.local_derivative)  # (p+1, p+1)
        obs_nodes, obs_weights = mesh.locate(t)  # (obs, p+1) each
        std, deriv_std = self.scales["std"], self.scales["deriv_std"]
        span = float(t[-1] - t[0])
        # data = sum of data_weight * (P c - y)^2, dyn = sum of residual_weight * (G c - f)^2: the means and
        # normalisations of the objective folded into one weight per state (and per node for dyn).
        self.data_weight = self.blocks(1.0 / (std ** 2 * n_traj * n_obs * dim))  # (state,)
        self.residual_weight = self.tensor(mesh.quadrature[:p1, None] / (deriv_std ** 2 * n_traj * span * dim))
        # The normal equations are the objective state by state times N std_s^2 (N = traj * obs * state): there a
        # weight w on dyn becomes w * ratio_s.
        ratio = n_obs * std ** 2 / (span * deriv_std ** 2)  # (state,)
        PtP, GtWG = mesh.observation_blocks(t), mesh.stiffness_block  # element form: (E, p+1, p+1), (p+1, p+1)
        # The data term as the quadratic form c'P'Pc - 2 c.P'y + y.y, from what the c-step holds anyway (P'P in
        # element form, P'y): the observations themselves, and P c at every observation, are never held.
        self.PtP = self.blocks(PtP)  # (E, p+1, p+1)
        self.yty = self.blocks(np.square(data.train).sum(1))  # (traj, state)
        self.PtY = torch.zeros(self.shape, dtype=torch.float64, device=self.device)  # P'y, (traj, nodes, state)
        train = self.blocks(data.train)
        for j in range(p1):  # one local node at a time: no (traj, obs, p+1, state) temporary
            self.PtY.index_add_(1, torch.as_tensor(obs_nodes[:, j], device=self.device),
                                train * self.blocks(obs_weights[:, j, None]))
        del train
        initial = ElementSolver(self.blocks(PtP[None] + (cfg["init_smoothing"] * ratio)[:, None, None, None] * GtWG))
        self.c = torch.empty(self.shape, device=self.device)  # float32, as the network sees it
        for k in self.chunks:
            self.c[k] = self.solve(initial, self.PtY[k])
        if cfg["update_coefficients"]:
            self.mu = float(cfg["prox"]) * np.trace(PtP, axis1=1, axis2=2).sum() / n
            # The c-step's float64 operands, from the mesh's float64 numbers: its right-hand side must be made of
            # the same numbers as its matrix, or float32 rounding (1e-7) is all the accuracy the float64 solve has.
            self.D64 = self.blocks(mesh.local_derivative)
            self.rho_w = self.blocks(mesh.quadrature[:p1, None] * cfg["rho"] * ratio)  # (p+1, state): rho_s W
            # A_s = P'P + rho_s G'WG + mu I per state, rho_s = rho ratio_s, in float64 (G'WG grows like (p^2/h)^2),
            # factored once.
            self.solver = ElementSolver(self.blocks(PtP[None] + (cfg["rho"] * ratio)[:, None, None, None] * GtWG
                                                    + self.mu * mesh.identity_blocks[None]))
        with torch.no_grad():
            self.data_fit = sum(self.data_loss(k) for k in self.chunks).item()  # constant while c is frozen
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg["lr"])

    def batching(self, n_traj: int) -> None:
        """The theta step's mini-batches of elements and the c-step's chunks of trajectories."""
        # Element e of trajectory b holds the nodes e*p .. e*p+p of c[b]: `elements` views them without a copy.
        self.n_elements = n_traj * self.mesh.E  # numbered b*E + e
        size = self.used("elements_per_step")  # "all" from as many as there are elements
        self.batch_size = None if size == "all" else size  # None: every element
        self.n_batches = 1 if self.batch_size is None else -(-self.n_elements // self.batch_size)
        # The c-step's chunks of trajectories: all at once, or about C_STEP_BATCHES mini-batches' elements each (at
        # least one trajectory); on measurements all at once (each trajectory has its own normal matrices).
        per_chunk = n_traj if self.batch_size is None or self.general else \
            max(1, self.C_STEP_BATCHES * self.batch_size // self.mesh.E)
        self.chunks = [slice(i, min(i + per_chunk, n_traj)) for i in range(0, n_traj, per_chunk)]
        self.queue: list[torch.Tensor] = []

    def observe(self) -> None:
        """Set up on measurements (the module's docstring): a mesh per trajectory, the data term on the outputs,
        the input at the nodes, and the c-step's normal matrices per trajectory and state."""
        data, cfg = self.data, self.config
        runs = data.trajectories("train")
        dim = self.system.dim
        outputs = list(data.outputs if data.outputs is not None else range(dim))
        hidden = [k for k in range(dim) if k not in outputs]
        cfg["E"] = elements(cfg, max(len(r.t) for r in runs))
        self.meshes = [Mesh(float(r.t[0]), float(r.t[-1]), cfg["E"], cfg["p"]) for r in runs]
        self.mesh = mesh = self.meshes[0]  # E, p and the node count are every trajectory's
        n_traj, E, n, p1 = len(runs), mesh.E, mesh.n_nodes, mesh.p + 1
        self.shape = (n_traj, n, dim)
        self.batching(n_traj)
        std, deriv_std = self.scales["std"], self.scales["deriv_std"]
        h = np.array([m.h for m in self.meshes])
        local = np.stack([m.local_derivative for m in self.meshes])  # (traj, p+1, p+1): (2/h_b) D
        self.D, self.D64 = self.tensor(local), self.blocks(local)
        weights = mesh.reference[1]  # GLL weights on [-1, 1]
        measured = np.zeros(dim)
        measured[outputs] = 1.0
        n_obs = sum(len(r.t) for r in runs)
        # data = sum of data_weight * (P c - y)^2 over every observation of every trajectory, outputs only; dyn's
        # weight w_j h_b / 2 / (deriv_std^2 traj span_b state) is the same for every trajectory (h_b / span_b = 1/E)
        self.data_weight = self.blocks(measured / (std ** 2 * n_obs * len(outputs)))  # (state,)
        self.residual_weight = self.tensor(weights[:, None] / (2 * E * deriv_std ** 2 * n_traj * dim))
        span = np.array([r.t[-1] - r.t[0] for r in runs])
        ratio = std ** 2 * n_obs * len(outputs) / (deriv_std ** 2 * n_traj * dim * span[:, None])  # (traj, state)
        PtP = np.stack([m.observation_blocks(r.t) for m, r in zip(self.meshes, runs)])  # (traj, E, p+1, p+1)
        GtWG = np.stack([m.stiffness_block for m in self.meshes])  # (traj, p+1, p+1)
        self.PtP = self.blocks(PtP)
        PtY, yty = np.zeros(self.shape), np.zeros((n_traj, dim))
        for b, (m, r) in enumerate(zip(self.meshes, runs)):
            nodes, w = m.locate(r.t)
            y = np.zeros((len(r.t), dim))
            y[:, outputs] = r.y
            for j in range(p1):
                np.add.at(PtY[b], nodes[:, j], y * w[:, j, None])
            yty[b] = (y ** 2).sum(0)
        self.PtY, self.yty = self.blocks(PtY), self.blocks(yty)
        if not data.input_free:
            inside = np.clip(mesh.reference[0], -1 + 1e-9, 1 - 1e-9)  # an end node reads its own element's input
            u = []
            for m, r in zip(self.meshes, runs):
                times = m.t0 + m.h * (np.arange(E)[:, None] + (inside[None, :] + 1) / 2)  # (E, p+1)
                u.append(hold_input(r.t_u, r.u, np.clip(times.ravel(), r.t_u[0], r.t_u[-1]), data.hold))
            self.u_nodes = self.tensor(np.stack(u).reshape(n_traj, E, p1, -1))

        def normal(data_part, smoothing, identity):  # (state * traj, E, p+1, p+1), state by state
            A = (measured[:, None, None, None, None] * data_part[None]
                 + (smoothing * ratio.T)[:, :, None, None, None] * GtWG[None, :, None]
                 + identity[:, None, None, None, None] * mesh.identity_blocks[None, None])
            return self.blocks(A.reshape(dim * n_traj, E, p1, p1))
        # the start: the least-squares fit of the outputs; a hidden state its first guess at the nodes (the identity,
        # no data): an output's rate where the structure says it is one, else its scale mean (Trainer.hidden_start)
        rhs = self.PtY.clone()
        if hidden:
            rhs[..., hidden] = self.blocks(np.stack([self.hidden_start(r, m.times, hidden)
                                                     for r, m in zip(runs, self.meshes)]))
        self.c = self.solve(ElementSolver(normal(PtP, cfg["init_smoothing"], 1.0 - measured)), rhs).float()
        if cfg["update_coefficients"]:
            self.mu = float(cfg["prox"]) * np.trace(PtP, axis1=2, axis2=3).sum() / (n_traj * n)
            quadrature = weights[None, :] * h[:, None] / 2  # (traj, p+1)
            self.rho_w = self.blocks(quadrature[:, None, :, None] * cfg["rho"] * ratio[:, None, None, :])
            self.solver = ElementSolver(normal(PtP, cfg["rho"], np.full(dim, self.mu)))
            if hidden:  # the Gauss-Newton c-step (the module's docstring): its data and proximal part, node by node
                self.linearised = True
                self.std = self.blocks(std)
                # (traj, E, j, a, l), then the identity in the states: (traj, E, (j, a), (l, c))
                fixed = measured[:, None] * PtP[..., None, :] + self.mu * mesh.identity_blocks[:, :, None]
                self.fixed = self.blocks((fixed[..., None] * np.eye(dim)[:, None]).reshape(n_traj, E, p1 * dim, -1))
        with torch.no_grad():
            self.data_fit = self.data_loss().item()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg["lr"])

    def inputs(self, elements: torch.Tensor | None = None, trajectories: slice = slice(None)):
        """The input at the local nodes of `elements` (or of every element of `trajectories`), or None."""
        if self.u_nodes is None:
            return None
        if elements is None:
            return self.u_nodes[trajectories]
        return self.u_nodes[elements // self.mesh.E, elements % self.mesh.E]

    def blocks(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=torch.float64, device=self.device)

    def solve(self, solver: ElementSolver, rhs: torch.Tensor) -> torch.Tensor:
        """c (traj, nodes, state), float64, from the normal equations' right-hand side (traj, nodes, state)."""
        if not self.general:
            return solver.solve(rhs.permute(2, 1, 0)).permute(2, 1, 0)  # the solver batches states, solves for traj
        b, n, s = rhs.shape  # on measurements a matrix per (state, trajectory)
        return solver.solve(rhs.permute(2, 0, 1).reshape(s * b, n, 1)).view(s, b, n).permute(1, 2, 0)

    def elements(self, c: torch.Tensor) -> torch.Tensor:
        """The element-local values of c (traj, nodes, state) as a view, (traj, E, p+1, state): S c, no copy."""
        return c.unfold(1, self.mesh.p + 1, self.mesh.p).transpose(-1, -2)

    def scatter(self, local: torch.Tensor, onto: torch.Tensor) -> torch.Tensor:
        """Add element-local values (traj, E, p+1, state) onto the nodes of `onto` (traj, nodes, state), in place:
        S' local, the transpose of `elements` (a node two elements share gets both values). Returns `onto`."""
        E, p = self.mesh.E, self.mesh.p
        onto[:, : E * p].view(onto.shape[0], E, p, onto.shape[-1]).add_(local[:, :, :p])
        onto[:, p::p].add_(local[:, :, p])
        return onto

    def element_values(self, elements: torch.Tensor | None = None):
        """Values and time derivatives at the local nodes of `elements` (indices b*E + e; None: all), each
        (elements, p+1, state), or (traj, E, p+1, state) for all."""
        x = self.elements(self.c)
        # a copy either way: the network and D take contiguous nodes faster than the overlapping view
        x = x.contiguous() if elements is None else x[elements // self.mesh.E, elements % self.mesh.E]
        if self.general:  # D per trajectory
            D = self.D[:, None] if elements is None else self.D[elements // self.mesh.E]
            return x, torch.einsum("...ij,...js->...is", D, x)
        return x, torch.einsum("ij,...js->...is", self.D, x)

    def nodes(self):
        """Element-local values and time derivatives of the current trajectories, each (traj, M, state)."""
        b, s = self.c.shape[0], self.c.shape[-1]
        return tuple(v.reshape(b, -1, s) for v in self.element_values())

    def residual_loss(self, f, dxdt) -> torch.Tensor:
        """The dynamics term over the elements of f and dxdt (..., p+1, state): all of them gives dyn."""
        return (self.residual_weight * (dxdt - f) ** 2).sum()

    def theta_loss(self, elements: torch.Tensor | None = None, values=None):
        """(loss, f): the dynamics term on `elements` (None: all), scaled by the number of batches in an epoch, so
        that the mean of the batches' losses (and gradients) over an epoch is the full term; and f_theta there.
        `values`: those elements' (x, dx/dt), if gathered already."""
        x, dxdt = values or self.element_values(elements)
        f = self.model(None, x) if self.u_nodes is None else self.model(None, x, self.inputs(elements))
        loss = self.residual_loss(f, dxdt)
        return (loss if elements is None else loss * self.n_batches), f

    def epoch(self) -> list[torch.Tensor]:
        """A random partition of all elements into n_batches mini-batches (sizes differ by at most one)."""
        order = torch.randperm(self.n_elements, generator=self.generator).to(self.device)
        return list(order.tensor_split(self.n_batches))

    def next_batch(self) -> torch.Tensor | None:
        if self.batch_size is None:
            return None
        if not self.queue:
            self.queue = self.epoch()
        return self.queue.pop()

    @torch.no_grad()
    def field(self, trajectories: slice = slice(None)) -> torch.Tensor:
        """f_theta at every element-local node of `trajectories`, (traj, E, p+1, state); evaluated a mini-batch of
        elements at a time when elements_per_step is set, so that no activation outgrows a mini-batch's."""
        x = self.elements(self.c[trajectories])
        if self.u_nodes is not None:
            u = self.inputs(trajectories=trajectories)
            if self.batch_size is None:
                return self.model(None, x, u)
            flat, u = x.reshape(-1, *x.shape[2:]), u.reshape(-1, *u.shape[2:])
            return torch.cat([self.model(None, a, b) for a, b in zip(flat.split(self.batch_size),
                                                                    u.split(self.batch_size))]).view(x.shape)
        if self.batch_size is None:
            return self.model(None, x)
        flat = x.reshape(-1, *x.shape[2:])  # (traj*E, p+1, state)
        return torch.cat([self.model(None, chunk) for chunk in flat.split(self.batch_size)]).view(x.shape)

    def at_observations(self) -> torch.Tensor:
        """x at the observation times, (traj, obs, state): P c, p+1 nodes weighted per observation (for checks
        and plots; training uses the data term's quadratic form)."""
        nodes, weights = self.mesh.locate(self.data.t)
        w = torch.as_tensor(weights, dtype=self.c.dtype, device=self.device)
        return (self.c[:, torch.as_tensor(nodes, device=self.device)] * w[..., None]).sum(-2)

    def data_loss(self, trajectories: slice = slice(None)) -> torch.Tensor:
        """The data term's part from `trajectories` (all: the data term), float64: per trajectory and state
        ||P c - y||^2 = c'P'Pc - 2 c.P'y + y.y, P'P applied element by element. Float64 keeps the cancellation
        harmless: a fit good to 1e-6 of the data loses 1e-10 of its data term."""
        c = self.c[trajectories].double()
        x = self.elements(c)
        if self.general:  # P'P per trajectory
            quad = torch.einsum("teis,teij,tejs->ts", x, self.PtP[trajectories], x)
        else:
            quad = torch.einsum("teis,eij,tejs->ts", x, self.PtP, x)
        return ((quad - 2 * (c * self.PtY[trajectories]).sum(1) + self.yty[trajectories]) * self.data_weight).sum()

    def _step(self) -> float:
        """One sweep of coordinate descent; returns J at the start of the sweep (dyn on the first theta batch)."""
        cfg = self.config
        update = cfg["update_coefficients"]
        jacobi = update and cfg["sweep"] == "jacobi"
        batch = self.next_batch()
        values = data = None
        if update and jacobi and (batch is not None or self.linearised):
            # Jacobi with mini-batches or with the linearised c-step (which evaluates f_theta and its Jacobian
            # itself): the c-step first, on theta before its update, and the theta step on the batch as it was
            # before the c-step (gathering a batch copies its nodes), so each sees the other's old value.
            values = self.element_values(batch)
            data = self.coefficient_sweep()
        for k in range(cfg["theta_steps"]):
            if k:
                batch, values = self.next_batch(), None
            self.optimizer.zero_grad(set_to_none=True)
            loss, f = self.theta_loss(batch, values)
            loss.backward()
            self.optimizer.step()
            if k == 0:
                dyn, f_before = loss.detach(), f.detach()  # Jacobi's f_theta: theta before any of the updates
        if not update:
            return self.data_fit + dyn.item()  # J with c frozen, as the theta step weighs it (no rho: no c-step)
        if data is None:
            # Jacobi on all elements: the first theta step's own forward pass (theta before any update);
            # Gauss-Seidel: f_theta after the last update.
            data = self.coefficient_sweep(f_before if jacobi else None)
        return (data + cfg["rho"] * dyn).item()

    @torch.no_grad()
    def coefficient_sweep(self, f: torch.Tensor | None = None) -> torch.Tensor:
        """Replace c by the c-step's minimiser, a chunk of trajectories at a time and in place (the normal equations
        do not couple trajectories), with f_theta given at every element node (traj, E, p+1, state) or evaluated from
        the current theta; returns the data term at the old c."""
        data = torch.zeros((), dtype=torch.float64, device=self.device)
        for k in self.chunks:
            data += self.data_loss(k)
            if self.linearised:
                self.c[k] = self.linearised_step(k)
            else:
                self.c[k] = self.coefficient_step(self.field(k) if f is None else f[k], k)
        return data

    def coefficient_rhs(self, f: torch.Tensor, trajectories: slice = slice(None)) -> torch.Tensor:
        """P'y + rho_s G'W f + mu c on `trajectories`, for f_theta values f (traj, E, p+1, state) at their element
        nodes: the right-hand side of the c-step's normal equations, (traj, nodes, state) in float64."""
        rhs = torch.add(self.PtY[trajectories], self.c[trajectories].double(), alpha=self.mu)
        if self.general:  # D and rho_s W per trajectory
            weighted = self.rho_w[trajectories] * f.double()
            return self.scatter(torch.einsum("...ji,...js->...is", self.D64[trajectories, None], weighted), rhs)
        return self.scatter(torch.einsum("ji,...js->...is", self.D64, self.rho_w * f.double()), rhs)

    @torch.no_grad()
    def coefficient_step(self, f: torch.Tensor, trajectories: slice = slice(None)) -> torch.Tensor:
        """argmin_c data(c) + rho * ||G c - f||_W^2 + mu ||c - c_old||^2 on `trajectories`, with f_theta frozen at
        the values f (traj, E, p+1, state), each state's normal equations solved in element form; (traj, nodes,
        state), float64."""
        return self.solve(self.solver, self.coefficient_rhs(f, trajectories))

    @torch.no_grad()
    def linearisation(self, trajectories: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        """f_theta and its Jacobian in the state at every element-local node of `trajectories`, (traj, E, p+1,
        state) and (traj, E, p+1, state, state) (row: f's component, column: the state's): one forward-mode pass
        over the nodes, a mini-batch of elements at a time when elements_per_step is set."""
        x = self.elements(self.c[trajectories])
        shape, dim = x.shape, x.shape[-1]
        u = self.inputs(trajectories=trajectories)

        def at_node(x, u):  # one node's state (state,) and input (input,) or None
            f = self.model(None, x) if u is None else self.model(None, x, u)
            return f, f

        per_node = torch.func.vmap(torch.func.jacfwd(at_node, has_aux=True), in_dims=(0, None if u is None else 0))
        flat = x.reshape(-1, dim)
        u_flat = None if u is None else u.reshape(len(flat), -1)
        size = len(flat) if self.batch_size is None else self.batch_size * (self.mesh.p + 1)
        parts = [per_node(flat[i: i + size], None if u is None else u_flat[i: i + size])
                 for i in range(0, len(flat), size)]
        jacobian, f = (torch.cat(part) for part in zip(*parts))
        return f.view(shape), jacobian.view(*shape, dim)

    @torch.no_grad()
    def linearised_step(self, trajectories: slice = slice(None)) -> torch.Tensor:
        """The Gauss-Newton c-step (the module's docstring) on `trajectories`: argmin_c data(c) + rho * ||G c -
        f(S c_old) - J (S c - S c_old)||_W^2 + mu ||c - c_old||^2, J f_theta's Jacobian in the state at each node
        of the old c; in z = c / std (each state in its own scale, so that the matrix stays symmetric and well
        scaled), one matrix per trajectory, the states coupled at each node; (traj, nodes, state), float64."""
        f, jacobian = self.linearisation(trajectories)
        std = self.std
        J = jacobian.double() * std / std[:, None]  # (traj, E, p+1, s, a): J_sa std_a / std_s, in z's scale
        z_old = self.c[trajectories].double() / std  # (traj, nodes, state)
        b, E, p1, k = f.shape
        eye = torch.eye(k, dtype=torch.float64, device=self.device)
        # M[(i, s), (j, a)] = delta_sa D_ij - delta_ij J_sa(i): the linearised residual's operator in an element
        M = (self.D64[trajectories, None, :, None, :, None] * eye[:, None, :]
             - torch.eye(p1, dtype=torch.float64, device=self.device)[:, None, :, None] * J[..., None, :])
        weighted = M * self.rho_w[trajectories][..., None, None]  # (traj, E, i, s, j, a): rho_s W M
        blocks = torch.einsum("beisja,beislc->bejalc", weighted, M).reshape(b, E, p1 * k, p1 * k)
        # the residual's constant part in z's scale, f(S c_old) - J S c_old at each node
        constant = f.double() / std - torch.einsum("beisa,beia->beis", J, self.elements(z_old))
        rhs = torch.add(self.PtY[trajectories] / std, z_old, alpha=self.mu)
        self.scatter(torch.einsum("beisja,beis->beja", weighted, constant), rhs)
        solver = ElementSolver(self.fixed[trajectories] + blocks, node=k)
        return solver.solve(rhs.reshape(b, -1, 1)).view(b, -1, k) * std

    def initial_states(self) -> np.ndarray:
        """Each training trajectory's state at its first time, c at the mesh's first node (traj, state)."""
        return self.c[:, 0].double().cpu().numpy()


def elements(cfg, n_obs: int) -> int:
    """Elements per trajectory: E, or from the density and the order when E is "auto"."""
    return auto_elements(n_obs, cfg["p"], cfg["density"]) if cfg["E"] == "auto" else cfg["E"]


def auto_elements(n_obs: int, order: int, density: float = 0.75) -> int:
    """E such that the mesh has about `density` global nodes per observation. The default 0.75 is enough to
    follow the data, and few enough that the initial least-squares fit is determined by the data rather than by its
    smoothing term; tuning searches it."""
    return max(1, round(density * (n_obs - 1) / order))


class SpectralTwoStage(Spectral):
    summary = "ablation: SNODE with coefficients frozen at the least-squares fit (two-stage collocation)"
    role = "ablation"
    # With c frozen there is no c-step, so none of its settings (rho, prox, sweep); the theta step's loss is the
    # residual alone. The Legendre order and the density decide how closely the frozen fit follows the data.
    settings = amend(Spectral.settings, drop=("rho", "prox", "sweep"),
                     update_coefficients={"default": False, "choices": (False,)})
    # Frozen at the least-squares fit, a hidden state would stay at its start and the fit's irregular times and held
    # input are untested ground: it keeps to full states on one grid.
    learns_from = frozenset()
