"""Multiple shooting with learnable shooting states and a continuity penalty (DiffEqFlux's `multiple_shoot`,
torchdyn's multiple-shooting layers; Bock and Plitt 1984 for the method).

Each training trajectory is cut into segments of `segment_length` observations, neighbours sharing their end
observation (the last segment starts early enough to end at the last observation, so every segment spans the same
times). Segment j starts from its own shooting state s_j, a parameter initialised at its first observation and
trained by Adam along with theta; every segment is solved over its observation times at once, as a batch, by the
torchdiffeq solver of the baselines (`TorchdiffeqTrainer.rollout`: RK4 at the observation step by default). The loss

    misfit + continuity * gap,
    misfit = mean over (segment, obs, state) of ((x_j(t) - y(t)) / std)^2
    gap    = mean over (segment j with a successor, state) of ((x_j(t_{start of j+1}) - s_{j+1}) / std)^2

fits every segment to its data and pulls each segment's solution onto its successor's shooting state, so that at
convergence the segments join into one trajectory of the model. No solve runs longer than a segment.

On measurements (specbench.systems.datasets.NEEDS) this is truncated simulation error minimisation (Forgione and Piga
2021): each trajectory is cut the same way at its own observations (segment_length at most the fewest observations of a
trajectory), every segment a row of `specbench.numerics.simulate` with its own times and held input; a shooting state's
outputs start at their observation and its hidden states at their first guess (Trainer.hidden_start), all of it
learned; the misfit is on the outputs alone and the gap on the whole state, hidden states included.
"""
from __future__ import annotations

import numpy as np
import torch

from specbench.trainers.settings import Limit, Setting, amend
from specbench.trainers.solver import TorchdiffeqTrainer


def segments(observations: int, segment_length: int) -> int:
    """Segments per trajectory of `observations`, neighbours sharing their end observation."""
    return -(-(observations - 1) // (segment_length - 1))


# A batch of every segment is "all": the limit is one less than the segments of the data.
SEGMENTS = Limit("the segments of the data", lambda shape, cfg: shape.trajectories * segments(
    shape.observations, min(cfg["segment_length"], shape.observations)) - 1, beyond="all")
# The batch sizes tuning extends a grid along: up to every segment.
BATCHES = (4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, "all")


class MultipleShooting(TorchdiffeqTrainer):
    summary = "multiple shooting: learnable shooting states, continuity penalty, segments solved by torchdiffeq RK4"
    role = "rival"
    solves_ode = True  # over segments: the horizon study also runs it on whole trajectories (single shooting)
    # The learning rate against segment_length: short segments are cheap, parallel and easy to fit, long ones tie
    # the model to longer solves (segment_length = observations is single shooting with a learnable x0).
    # Its continuity weight, and segments per step, against the same learning rates and schedules as everyone's.
    settings = amend(
        TorchdiffeqTrainer.settings,
        method={"default": "rk4"},
        segment_length={"default": 5, "meaning": "observations per segment, its shooting state's included",
                         "grid": (5, 10, 20)},
        batch_size={"default": "all", "meaning": "segments (of all trajectories) per step", "reach": None,
                    "words": ("all",), "limit": SEGMENTS, "grid": ("all", 64), "scale": "ladder", "ladder": BATCHES},
        tolerances={"grid": ()},
        add=(Setting("continuity", 1.0, "weight of the continuity gap against the data misfit", low=0.0,
                     reach=(1e-4, 1e4), grid=(0.3, 1.0, 3.0), scale="log"),),
    )

    def __init__(self, system, data, config=None, seed=0, device="cpu"):
        super().__init__(system, data, config, seed, device)
        size = self.used("batch_size")  # "all" from as many as there are segments
        self.batch_size = None if size == "all" else size
        if self.general:
            return
        n_traj, n_obs, dim = self.y.shape
        seg = self.seg
        per_traj = segments(n_obs, seg)
        self.starts = torch.clamp(torch.arange(per_traj, device=self.device) * (seg - 1), max=n_obs - seg)
        self.n_segments = n_traj * per_traj  # numbered b * per_traj + j
        # Flat segment i: its observations (segments, seg, state); its successor is i + 1 where `has_next`, and its
        # solution meets that successor's shooting state at its local observation `link`.
        self.targets = self.cut(self.y)
        self.has_next = (torch.arange(per_traj, device=self.device) < per_traj - 1).repeat(n_traj)
        self.link = torch.diff(self.starts, append=self.starts[-1:]).repeat(n_traj)
        self.states = torch.nn.Parameter(self.targets[:, 0].clone())  # (segments, state)
        self.optimizer.add_param_group({"params": [self.states]})

    def plan(self, runs, hidden):
        cfg = self.config
        cfg["segment_length"] = self.seg = seg = self.used("segment_length")  # at most the fewest observations
        self.pieces, link, has_next = [], [], []
        for b, r in enumerate(runs):
            starts = np.minimum(np.arange(segments(len(r.t), seg)) * (seg - 1), len(r.t) - seg)
            self.pieces += [(b, int(s), seg) for s in starts]
            link += list(np.diff(starts, append=starts[-1:]))
            has_next += [True] * (len(starts) - 1) + [False]
        self.n_segments = len(self.pieces)
        self.link = torch.as_tensor(link, device=self.device)
        self.has_next = torch.as_tensor(has_next, device=self.device)
        y0 = self.tensor(np.stack([runs[b].y[s] for b, s, _ in self.pieces]))  # (segments, outputs)
        # the hidden states' first guess at every segment start, one call per trajectory (pieces are in its order)
        start = self.tensor(np.concatenate([self.hidden_start(r, r.t[[s for c, s, _ in self.pieces if c == b]], hidden)
                                            for b, r in enumerate(runs)])) if hidden else None  # (segments, hidden)
        self.states = torch.nn.Parameter(self.state(y0, start))  # (segments, state)
        self.optimizer.add_param_group({"params": [self.states]})

    def initial_states(self) -> np.ndarray | None:
        """On measurements, the shooting state of each trajectory's first segment (hidden states included)."""
        if not self.general:
            return None
        first = [i for i, (_, start, _) in enumerate(self.pieces) if start == 0]  # one per trajectory, in order
        return self.states[first].detach().double().cpu().numpy()

    def cut(self, y: torch.Tensor) -> torch.Tensor:
        """Trajectories (traj, obs, state) cut into the segments, (segments, seg, state)."""
        return y[:, self.starts[:, None] + self.offsets].flatten(0, 1)

    def objective(self, states: torch.Tensor, segments: torch.Tensor | None = None):
        """(misfit, gap) of `segments` (flat indices; None: all) from the shooting states (segments, state); the gap
        of a segment whose successor is not drawn is still measured, against the successor's shooting state."""
        if segments is None:
            segments = torch.arange(self.n_segments, device=self.device)
        if self.general:
            rows = self.rows.select(segments)
            pred = self.simulate(states[segments], rows)
            misfit = self.output_loss(pred, rows)
        else:
            pred = self.rollout(states[segments])  # (batch, seg, state)
            misfit = (((pred - self.targets[segments]) / self.std) ** 2).mean()
        rows = self.has_next[segments].nonzero().squeeze(1)  # drawn segments that have a successor
        if not len(rows):  # single shooting (one segment per trajectory), or a draw of last segments only
            return misfit, misfit.new_zeros(())
        ends = pred[rows, self.link[segments[rows]]]  # (rows, state)
        gap = (((ends - states[segments[rows] + 1]) / self.std) ** 2).mean()
        return misfit, gap

    def _step(self) -> float:
        segments = None if self.batch_size is None else \
            torch.randperm(self.n_segments, generator=self.generator)[: self.batch_size].to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        misfit, gap = self.objective(self.states, segments)
        loss = misfit + self.config["continuity"] * gap
        self.backward(loss)
        self.optimizer.step()
        return loss.item()
