"""Baselines that train through torchode's solvers (Lienen & Günnemann, "torchode: A Parallel ODE Solver for
PyTorch", 2022), so that a speed-up over the solver baselines is not one library's overhead.

The same segment mini-batches, loss and Adam step as the torchdiffeq baselines (`SolverTrainer`), the same dopri5
tableau and tolerances; what differs is the library: torchode solves each segment as its own problem (its own
step size and error control) in one batched loop.

The adjoint is torchode's `JointBacksolveAdjoint`, the one its authors provide for a batch whose instances share
their evaluation times (every segment here shares `t_seg`): the batch is one joint system, with one parameter
adjoint, as in torchdiffeq's `odeint_adjoint`. Its `BacksolveAdjoint`, used before, carries a copy of every
parameter's adjoint per sample (vmap over a per-sample VJP): on lotka-volterra dense, one step took 1.38 s at
batch 128 against 0.19 s joint and 0.23 s for torchdiffeq's adjoint (0.55, 0.28 and 0.34 s at batch 16), with the
same gradients to 1e-6, so the reference's torchode-adjoint (0.1-1.7 s a step) measured our misuse, not torchode.

On measurements each row is solved on its own times (torchode's per-sample t_eval) with its input inside the field.
torchode has no jump times: a zero-order hold's jumps are found by its error control (rejected steps), the cost a
torchode user pays. The joint adjoint needs one grid for the batch, so torchode-adjoint does not learn from irregular
times (and JointBacksolveAdjoint's per-sample alternative, BacksolveAdjoint, vmaps the field, which the rows' input
tables do not survive).
"""
from __future__ import annotations

import torch
import torchode

from specbench.core.errors import Diverged
from specbench.numerics.simulate import Driven
from specbench.trainers.settings import Setting, amend
from specbench.trainers.solver import SolverTrainer


class TorchodeTrainer(SolverTrainer):
    """Segments solved by torchode with its integral step-size controller; gradients by backpropagation through
    the solver (`AutoDiffAdjoint`) or by the adjoint ODE (`JointBacksolveAdjoint`: the segments share their
    times)."""

    settings = (  # role and tuning grid: SolverTrainer's, the same as the torchdiffeq baselines'
        Setting("method", "dopri5", "a method in torchode's registry", str, choices=tuple(torchode.interface.METHODS)),
        Setting("adjoint", False, "gradients by the adjoint ODE (JointBacksolveAdjoint) instead of backprop", bool),
        *SolverTrainer.settings,
        # torch.compile of the solve, as torchode's docs suggest. Not kept: on lotka-volterra dense (one CPU thread,
        # torch 2.13) it spent 15-75 s compiling (dynamo recompiles for the model's call counter) and then took
        # 1.3-2x eager's time a step; compiling the network alone, about 4x. TorchScript (torch.jit.script of
        # torchode's AutoDiffAdjoint) fails to compile on this torch.
        Setting("compile", False, "torch.compile the solve", bool),
    )

    def __init__(self, system, data, config=None, seed=0, device="cpu"):
        super().__init__(system, data, config, seed, device)
        cfg = self.config
        # on measurements the field reads the input of the rows being solved (`simulate` sets it)
        self.driven = Driven(self.model, None) if self.general else None
        term = torchode.ODETerm(self.driven or self.model, with_stats=False)  # the model counts its own calls
        method = torchode.interface.METHODS[cfg["method"]](term=term)
        controller = torchode.IntegralController(atol=cfg["atol"], rtol=cfg["rtol"], term=term)
        # torchdiffeq's max_num_steps bounds each observation interval; torchode's max_steps bounds a whole solve.
        max_steps = int(cfg["max_num_steps"]) * (self.seg - 1)
        if cfg["adjoint"]:
            self.solver = torchode.JointBacksolveAdjoint(term, method, controller)
            self.solver.forward_loop.max_steps = max_steps
            # The backward pass solves one observation interval at a time: the per-interval bound applies as is.
            self.solver.backward_loop.max_steps = int(cfg["max_num_steps"])
        else:
            # torchdiffeq picks step sizes under no_grad; so does this, and the graph stays the solution's alone.
            self.solver = torchode.AutoDiffAdjoint(method, controller, max_steps=max_steps,
                                                   backprop_through_step_size_control=False)
        self.solve = torch.compile(self.solver.solve) if cfg["compile"] else self.solver.solve
        self._backsolve_stats: list | None = None

    def simulate(self, x0, rows):
        self.driven.signal = rows.signal
        return self.rollout(x0, rows.tau.to(torch.float32))

    def rollout(self, x0, t_eval=None):
        # torchode takes one time grid per sample, (batch, seg): the segments share t_seg. Its times stay float32
        # (torchdiffeq keeps times in float64): in float64 BacksolveAdjoint mixes a float64 time adjoint into the
        # float32 augmented state, and the network rejects it.
        t_eval = self.t_seg.expand(x0.shape[0], -1) if t_eval is None else t_eval
        sol = self.solve(torchode.InitialValueProblem(y0=x0, t_eval=t_eval))
        failed = sol.status != torchode.status_codes.SUCCESS
        if failed.any():
            status = torchode.Status(int(sol.status[failed][0])).name
            raise Diverged(f"solver failed: torchode status {status} in {int(failed.sum())} of {len(failed)} "
                           "solves")
        self._backsolve_stats = sol.stats.setdefault("backsolve", []) if self.config["adjoint"] else None
        return sol.ys  # (batch, seg, state)

    def backward(self, loss):
        loss.backward()
        if self._backsolve_stats is not None:
            # The adjoint's backward solves report no status: a solve that ran out of steps or met non-finite
            # values left the gradients unfinished, so read the step counts and the gradients themselves.
            limit = self.solver.backward_loop.max_steps
            if any(int(s["n_steps"].max()) >= limit for s in self._backsolve_stats):
                raise Diverged(f"solver failed: the adjoint's backward solve reached max_steps ({limit})")
            if not all(torch.isfinite(p.grad).all() for p in self.model.parameters() if p.grad is not None):
                raise Diverged(f"solver failed: non-finite adjoint gradients at iteration {self.iteration}")


class TorchodeDopri5(TorchodeTrainer):
    summary = "torchode Dopri5, integral step-size controller, gradients by backprop through the solver"


class TorchodeAdjoint(TorchodeTrainer):
    summary = "torchode Dopri5, integral step-size controller, gradients by the adjoint ODE (JointBacksolveAdjoint)"
    learns_from = frozenset({"inputs", "hidden"})  # one grid for the batch: the joint adjoint's condition
    settings = amend(TorchodeTrainer.settings, adjoint={"default": True})
