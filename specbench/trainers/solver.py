"""Baselines that train through an ODE solver: the shared segment mini-batches, and torchdiffeq's solvers.

Each step draws a mini-batch of trajectory segments (`batch_size` segments of `segment_length` observations),
integrates the model from each segment's first observed state and takes an Adam step on the normalised MSE
against the observations — the usual way neural ODEs are fitted to trajectories (torchdiffeq's ode_demo.py).
`SolverTrainer` holds that loop; a subclass only says how it solves (`rollout`): torchdiffeq's `odeint` and
`odeint_adjoint` here, torchode in `torchode_solver.py`.

Measurements (data in the general form, specbench.systems.datasets.NEEDS) are read trajectory by trajectory, as rows of
`specbench.numerics.simulate` (each with its own times and held input, u inside the field: f(x, u(t))), and the loss is
on the outputs alone. With every state measured a step draws `batch_size` segments of `segment_length` observations,
uniformly from all the segments of all trajectories, each starting from its observed state. With hidden states the
state is known nowhere but where the model says: each training trajectory has learned initial values of its hidden
states (a parameter trained with the network, started at the hidden states' first guess, Trainer.hidden_start) and
every step simulates every whole training trajectory from them and its first observed outputs (single shooting;
segment_length is the longest trajectory's observations). Cutting trajectories into segments with learned states is multiple shooting's
way (`shooting.py`).
"""
from __future__ import annotations

import numpy as np
import torch
from torchdiffeq import odeint, odeint_adjoint
from torchdiffeq._impl.odeint import SOLVERS  # torchdiffeq's own table of method names

from specbench.numerics.simulate import Rows, make_rows, solve_rows
from specbench.trainers.base import LR, SCHEDULE, Trainer
from specbench.trainers.settings import OBSERVATIONS, Joint, Setting, amend


# The tolerance pairs (rtol, atol) tuning extends an adaptive method's grid along, a factor 100 apart as the grid's
# are: from rtol 1e-1, the loosest a solve that still follows the field takes, to 1e-9.
TOLERANCES = ((1e-1, 1e-2), (1e-3, 1e-4), (1e-5, 1e-6), (1e-7, 1e-8), (1e-9, 1e-10))
FIXED_STEP = ("rk4", "euler", "midpoint")  # methods that step by steps_per_obs, not by tolerances


class SolverTrainer(Trainer):
    """Segment mini-batches, the loss and the Adam step shared by every solver baseline."""

    role = "baseline"
    # What decides a solver baseline's speed: the learning rate, the batch, the segment length, the tolerances of an
    # adaptive method (a fixed-step one has its steps per observation instead, BackpropRK4) and the schedule.
    settings = (
        LR,
        Setting("batch_size", 16, "segments per step, drawn with replacement", int, low=1, reach=(1, 4096),
                grid=(8, 32, 128), scale="log"),
        Setting("segment_length", 20, "observations per segment, its initial state included", int, low=2,
                limit=OBSERVATIONS, grid=(10, 20, 40), scale="log"),
        Setting("rtol", 1e-5, "relative tolerance of an adaptive method", low=0.0, high=1.0),
        Setting("atol", 1e-6, "absolute tolerance of an adaptive method", low=0.0, high=1.0),
        Joint("tolerances", ("rtol", "atol"), "the adaptive method's tolerance pair, tuned together",
              grid=((1e-3, 1e-4), (1e-5, 1e-6)), ladder=TOLERANCES),
        Setting("max_num_steps", 10000, "an adaptive method's steps per observation interval at most: a stiff "
                "model fails instead of hanging", int, low=1),
        SCHEDULE,
    )
    # Trainers that train through an ODE solve; the horizon study also runs them on whole trajectories.
    solves_ode = True
    learns_from = frozenset({"inputs", "hidden", "irregular"})

    def __init__(self, system, data, config=None, seed=0, device="cpu"):
        super().__init__(system, data, config, seed, device)
        cfg = self.config
        if self.general:
            self.observe()
            return
        self.y = self.tensor(data.train)  # (traj, obs, state)
        self.std = self.tensor(self.scales["std"])
        cfg["segment_length"] = self.seg = self.used("segment_length")  # at most the observations
        self.t_seg = self.tensor(data.t[: self.seg] - data.t[0])  # uniform grid: every segment shares these times
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg["lr"])
        self.offsets = torch.arange(self.seg, device=self.device)

    def observe(self) -> None:
        """Set up training on measurements (the module's docstring): the rows to draw from, the outputs' scales,
        and the learned initial values of hidden states."""
        data, cfg = self.data, self.config
        self.runs = runs = data.trajectories("train")
        dim = self.system.dim
        outputs = list(data.outputs if data.outputs is not None else range(dim))
        hidden = [k for k in range(dim) if k not in outputs]
        self.outputs = torch.as_tensor(outputs, device=self.device)
        self.order = torch.as_tensor(np.argsort(outputs + hidden), device=self.device)  # [outputs, hidden] -> x
        self.std = self.tensor(self.scales["std"])
        self.std_out = self.std[self.outputs]
        self.dt = float(np.mean(np.concatenate([np.diff(r.t) for r in runs])))  # the mean observation interval
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg["lr"])
        self.plan(runs, hidden)
        self.rows = make_rows(runs, self.pieces, data.hold, device=self.device)

    def plan(self, runs, hidden: list[int]) -> None:
        """The pieces of the trajectories a step draws from, (trajectory, first observation, observations), and
        the learned states beside the network."""
        cfg = self.config
        self.initial_hidden = None
        if hidden:
            cfg["segment_length"] = self.seg = max(len(r.t) for r in runs)
            self.pieces = [(b, 0, len(r.t)) for b, r in enumerate(runs)]
            start = self.tensor(np.concatenate([self.hidden_start(r, r.t[:1], hidden) for r in runs]))  # (traj, hidden)
            self.initial_hidden = torch.nn.Parameter(start)
            self.optimizer.add_param_group({"params": [self.initial_hidden]})
        else:
            cfg["segment_length"] = self.seg = self.used("segment_length")  # at most the fewest observations
            self.pieces = [(b, s, self.seg) for b, r in enumerate(runs) for s in range(len(r.t) - self.seg + 1)]

    def state(self, y0: torch.Tensor, hidden: torch.Tensor | None) -> torch.Tensor:
        """Full states (rows, state) from observed outputs y0 (rows, outputs) and hidden values (rows, hidden)."""
        parts = y0 if hidden is None else torch.cat([y0, hidden], -1)
        return parts[:, self.order]

    def output_loss(self, pred: torch.Tensor, rows: Rows) -> torch.Tensor:
        """Normalised MSE of the outputs of `pred` (rows, L, state) against the rows' observations."""
        err = ((pred[..., self.outputs] - rows.y) / self.std_out) ** 2 * rows.mask[..., None]
        return err.sum() / (rows.mask.sum() * len(self.outputs))

    def observed_step(self) -> float:
        if self.initial_hidden is not None:  # every whole trajectory from its learned initial state
            rows = self.rows
            x0 = self.state(rows.y[:, 0], self.initial_hidden)
        else:
            drawn = torch.randint(len(self.pieces), (int(self.config["batch_size"]),), generator=self.generator)
            rows = self.rows.select(drawn.to(self.device))
            x0 = self.state(rows.y[:, 0], None)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.output_loss(self.simulate(x0, rows), rows)
        self.backward(loss)
        self.optimizer.step()
        return loss.item()

    def initial_states(self) -> np.ndarray | None:
        """With hidden states, each trajectory's first observed outputs and its learned hidden initial values."""
        if not self.general or self.initial_hidden is None:
            return None
        return self.state(self.rows.y[:, 0], self.initial_hidden).detach().double().cpu().numpy()

    def simulate(self, x0: torch.Tensor, rows: Rows) -> torch.Tensor:
        """The model's solution of `rows` from x0 (rows, state), (rows, L, state), driven by the rows' inputs."""
        raise NotImplementedError

    def batch(self):
        """Initial states (batch, state) and targets (batch, seg, state) of randomly drawn segments."""
        n_traj, n_obs, _ = self.y.shape
        b = int(self.config["batch_size"])
        traj = torch.randint(n_traj, (b,), generator=self.generator).to(self.device)
        start = torch.randint(n_obs - self.seg + 1, (b,), generator=self.generator).to(self.device)
        target = self.y[traj[:, None], start[:, None] + self.offsets]
        return target[:, 0], target

    def rollout(self, x0: torch.Tensor) -> torch.Tensor:
        """The model's solution from x0 (batch, state) at the segment times `t_seg`: (batch, seg, state)."""
        raise NotImplementedError

    def backward(self, loss: torch.Tensor) -> None:
        """Gradients of `loss` into the model's parameters (a solver may check its backward solve here)."""
        loss.backward()

    def _step(self) -> float:
        if self.general:
            return self.observed_step()
        x0, target = self.batch()
        self.optimizer.zero_grad(set_to_none=True)
        loss = (((self.rollout(x0) - target) / self.std) ** 2).mean()
        self.backward(loss)
        self.optimizer.step()
        return loss.item()


class TorchdiffeqTrainer(SolverTrainer):
    """Segments solved by torchdiffeq: `odeint` (backprop through the solver) or `odeint_adjoint`."""

    settings = (
        Setting("method", "dopri5", "torchdiffeq's solver", str, choices=tuple(SOLVERS)),
        Setting("adjoint", False, "gradients by the adjoint ODE (odeint_adjoint) instead of backprop", bool),
        *SolverTrainer.settings,
        Setting("steps_per_obs", 1, "fixed-step methods: steps per observation interval", int, low=1,
                reach=(1, 64)),
        Setting("seminorm", False, "adjoint only: error control of the backward solve ignores the parameter "
                "adjoint", bool),
    )

    def __init__(self, system, data, config=None, seed=0, device="cpu"):
        super().__init__(system, data, config, seed, device)
        cfg = self.config
        dt = self.dt if self.general else float(data.t[1] - data.t[0])
        if cfg["method"] in FIXED_STEP:
            self.solver_kwargs = {"method": cfg["method"], "options": {"step_size": dt / cfg["steps_per_obs"]}}
        else:
            options = {"max_num_steps": int(cfg["max_num_steps"])}
            self.solver_kwargs = {"method": cfg["method"], "rtol": cfg["rtol"], "atol": cfg["atol"],
                                  "options": options}
            if cfg["adjoint"] and cfg["seminorm"]:
                # Kidger, Chen & Lyons, "Hey, that's not an ODE" (2021): far fewer backward steps, same gradients
                # to solver tolerance; torchdiffeq's recommended setting for the adjoint.
                self.solver_kwargs["adjoint_options"] = {**options, "norm": "seminorm"}
        self.solve = odeint_adjoint if cfg["adjoint"] else odeint

    def rollout(self, x0):
        return self.solve(self.model, x0, self.t_seg, **self.solver_kwargs).transpose(0, 1)

    def simulate(self, x0, rows):
        if self.config["method"] in FIXED_STEP:  # its step size bounds the steps of solve_rows' grid
            kwargs = {k: v for k, v in self.solver_kwargs.items() if k != "options"}
            return solve_rows(self.solve, self.model, x0, rows, step=self.solver_kwargs["options"]["step_size"],
                              **kwargs)
        return solve_rows(self.solve, self.model, x0, rows, **self.solver_kwargs)


class BackpropRK4(TorchdiffeqTrainer):
    summary = "torchdiffeq odeint, fixed-step RK4, gradients by backprop through the solver"
    settings = amend(TorchdiffeqTrainer.settings, method={"default": "rk4"}, tolerances={"grid": ()},
                     steps_per_obs={"grid": (1, 2), "scale": "log"})


class BackpropDopri5(TorchdiffeqTrainer):
    summary = "torchdiffeq odeint, adaptive dopri5, gradients by backprop through the solver"


class AdjointDopri5(TorchdiffeqTrainer):
    summary = "torchdiffeq odeint_adjoint, adaptive dopri5, gradients by the adjoint ODE"
    settings = amend(TorchdiffeqTrainer.settings, adjoint={"default": True}, seminorm={"default": True})
