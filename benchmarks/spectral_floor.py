"""How close the spectral trainer's step is to the floor of its own work: run as a script, not an asv suite.

    python benchmarks/spectral_floor.py [--steps 30] [--systems cubic-oscillator,lotka-volterra,network]
                                        [--trainer spectral] [--set KEY=VALUE ...]

The floor is one forward + backward + Adam step of the same network over the same nodes (every element-local node
of every training trajectory), with a plain squared-error loss: the theta step's regression and nothing else.
Each system's trainer is built as `specbench run --preset quick` builds it (dense data, tuned settings), in this one
process, on one thread; spectral steps and floor steps alternate, so a load change on a shared machine hits both,
and the figure is the median of `--steps` steps after the first of each. (asv collects functions and classes named
time_*, track_*, peakmem_*; this module has none, so it is not part of the asv suite.)
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from specbench.running.job import make_job
from specbench.running.protocol import build

SYSTEMS = ["cubic-oscillator", "lotka-volterra", "network"]


def floor_step(model, optimizer, x, target) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss = ((model(None, x) - target) ** 2).mean()
    loss.backward()
    optimizer.step()


def measure(system: str, steps: int, trainer_name: str = "spectral", settings: dict | None = None) -> dict:
    """Median seconds of a spectral step and of a floor step on `system` (dense data, tuned settings updated by
    `settings`)."""
    trainer = build(make_job(system, trainer_name, "dense", 0, budget_s=0.0, config=settings))[2]()
    with torch.no_grad():
        x, dxdt = trainer.nodes()  # (traj, M, state): the theta step's inputs and targets
    x, dxdt = x.detach().clone(), dxdt.detach().clone()
    model = copy.deepcopy(trainer.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(trainer.config["lr"]))
    spectral, floor = [], []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        trainer.step()
        t1 = time.perf_counter()
        floor_step(model, optimizer, x, dxdt)
        t2 = time.perf_counter()
        spectral.append(t1 - t0)
        floor.append(t2 - t1)
    step_s, floor_s = statistics.median(spectral[1:]), statistics.median(floor[1:])
    return {"system": system, "nodes": x.shape[0] * x.shape[1], "step_ms": 1e3 * step_s, "floor_ms": 1e3 * floor_s,
            "ratio": step_s / floor_s}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--trainer", default="spectral")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a trainer setting over the tuned ones, e.g. sweep=gauss-seidel (VALUE read as JSON)")
    args = parser.parse_args(argv)
    settings = dict(parse_setting(s) for s in args.set)
    torch.set_num_threads(1)
    print(f"{'system':<18}{'nodes':>7}{'step ms':>10}{'floor ms':>10}{'ratio':>8}")
    for system in args.systems.split(","):
        r = measure(system, args.steps, args.trainer, settings)
        print(f"{r['system']:<18}{r['nodes']:>7}{r['step_ms']:>10.2f}{r['floor_ms']:>10.2f}{r['ratio']:>8.2f}")


def parse_setting(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


if __name__ == "__main__":
    main()
