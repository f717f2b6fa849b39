"""Hand-made run records for tests of the verdicts, the report and the gate."""
import dataclasses
import math

from specbench.io import write_json_atomic
from specbench.records import SCHEMA, Record
from specbench.studies import vocabulary


def save(path, record) -> None:
    """Write a record (a Record, or a dict as a file might hold one) where a sweep would."""
    write_json_atomic(path, record.to_dict() if isinstance(record, Record) else record)


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
