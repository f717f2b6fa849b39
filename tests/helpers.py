"""What the tests share: the command line, the assertion on its one-line errors, hand-made run records, small
datasets and a true vector field."""
import dataclasses
import math
import os
import re
import subprocess
import sys

import torch
from torch import nn

from specbench.data import generate
from specbench.io import write_json_atomic
from specbench.plugins import get_system
from specbench.records import SCHEMA, Record
from specbench.studies import vocabulary

# ---- the command line ----------------------------------------------------------------------------------------------


def run_cli(*args, timeout=600, cwd=None):
    """Run `python -m specbench ARGS` in a fresh process (in `cwd`); returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "specbench", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ}, cwd=cwd)


def one_line_exit_2(proc, needle, alone=False):
    """Exit 2, no traceback, and one error line that says `needle` (a sweep may have said what it plans first;
    alone=True: nothing else on stderr)."""
    errors = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("specbench: error:")]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(errors) == 1 and needle in errors[0], proc.stderr
    assert not alone or len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# ---- hand-made run records, for the verdicts, the report and the gate ----------------------------------------------


def save(path, record) -> None:
    """Write a record (a Record, or a dict as a file might hold one) where a sweep would."""
    write_json_atomic(path, record.to_dict() if isinstance(record, Record) else record)


def write_records(directory, records) -> None:
    """Records under directory/runs/, each under the name a sweep gives it."""
    for r in records:
        save(directory / "runs" / f"{r.system}__{r.trainer}__{r.regime}__seed{r.seed}.json", r)


def replace(record: Record, **changes) -> Record:
    return dataclasses.replace(record, **changes)


def make_record(system="oscillator", trainer="spectral", seed=0, ttt=1.0, test_mse=1e-3, memory=1_000_000,
                status="ok", budget=10.0, regime="dense", iterations=100, target=1e-2, rollout=False,
                as_dict=False, role=None, kept="ttt"):
    """A record (as_dict: its JSON object, as a file holds it, without a role like records made before roles);
    `ttt` its first crossing of the target, `kept` its sustained time (default: the same);
    `role` where the trainer is newer than roles (the rivals: "rival"), whose records always carry it;
    rollout=True adds what a real run keeps for the rollout figure: the data's layout in
    config.data and the first test trajectory with a prediction (the truth scaled by 1 + seed/10)."""
    reached = None if ttt is None else ttt
    kept = reached if kept == "ttt" else kept
    record = {
        "schema": SCHEMA, "system": system, "trainer": trainer, "regime": regime, "seed": seed, "status": status,
        "error": None if status == "ok" else "non-finite loss at iteration 3",
        "config": {"lr": 0.01, "budget_s": budget}, "target_loss": target, "time_to_target_s": reached,
        "times_to_targets": {f"{3 * target:.3g}": reached, f"{target:.3g}": reached,
                             f"{target / 3:.3g}": None},
        "sustained_s": kept, "sustained_times": {f"{3 * target:.3g}": kept, f"{target:.3g}": kept,
                                                 f"{target / 3:.3g}": None},
        "best_checkpoint": {"seconds": budget, "iteration": iterations, "metric": 5e-3} if status == "ok" else None,
        "train_seconds": budget, "eval_seconds": 0.5, "iterations": iterations,
        "final_train_loss": 5e-3 if status == "ok" else None, "test_mse": test_mse if status == "ok" else None,
        "test_nmse": test_mse if status == "ok" else None, "peak_memory_bytes": memory,
        "curve": [[0.0, 0, 1.0], [budget / 2, iterations // 2, 2e-2], [budget, iterations, 5e-3]],
        "env": {"python": "3.11", "torch": "2.13.0", "torchdiffeq": "0.2.5", "numpy": "2", "threads": 2,
                "device": "cpu", "gpu": None, "cpu": "test cpu", "cores": 2, "git_commit": "abc"},
    }
    if role is not None:
        record["role"] = role
    if rollout:
        t = [0.5 * i for i in range(21)]
        truth = [[math.cos(x), -math.sin(x)] for x in t]
        record["config"]["data"] = {"n_train": 4, "n_times": 11, "t_span": 5.0, "test_horizon": 10.0}
        record["test_rollout"] = {"t": t, "truth": truth,
                                  "pred": [[v * (1 + seed / 10) for v in row] for row in truth]}
    return record if as_dict else Record.from_dict(record, vocabulary())


def sweep(spec=(1.0, 1.2, 0.8), baselines=None, base_mse=1e-2, **kw):
    """Seeds of spectral (one per entry of `spec`) and the three headline baselines; baselines maps name -> ttt
    per seed (None: not reached)."""
    baselines = baselines or {b: (20.0, 25.0, 30.0)[:len(spec)]
                              for b in ("backprop-rk4", "backprop-dopri5", "adjoint-dopri5")}
    out = [make_record(trainer="spectral", seed=i, ttt=t, **kw) for i, t in enumerate(spec)]
    for b, times in baselines.items():
        out += [make_record(trainer=b, seed=i, ttt=t, test_mse=base_mse, memory=2_000_000)
                for i, t in enumerate(times)]
    return out


def seeds(trainer, times, role=None, **kw):
    """One record of `trainer` per seed 0, 1, ..., with these times to target (None: not reached); `role` as in
    make_record ("rival" for the rivals)."""
    return [make_record(trainer=trainer, seed=i, ttt=t, role=role, **kw) for i, t in enumerate(times)]


RATIO = re.compile(r"(>\s)?([0-9.e+-]+)x \(([0-9.e+-]+) to ([0-9.e+-]+), n=\d+\)")


def ratios_outside_their_spread(text: str) -> list[str]:
    """Every printed 'value x (low to high, n=k)' in a report whose value lies outside [low, high]."""
    return [m.group(0) for m in RATIO.finditer(text)
            if not float(m.group(3)) <= float(m.group(2)) <= float(m.group(4))]


# ---- systems and data ----------------------------------------------------------------------------------------------


class TrueField(nn.Module):
    """The system's own right-hand side in the VectorField calling convention (t, x)."""

    def __init__(self, system):
        super().__init__()
        self.system = system
        self.register_buffer("anchor", torch.zeros(()))

    def forward(self, t, x):
        return self.system.rhs_torch(x)


def dataset(name="oscillator", regime="dense", noise=0.0, seed=0, **params):
    system = get_system(name, **params)
    return system, generate(system, regime, noise, seed)
