"""Does the wall-time gate cry wolf, and does it catch a real slow-down? A script, not an asv suite.

    python benchmarks/gate_noise.py [--system network] [--seeds 5] [--budget 0.3] [--tries 10] [--factor 1.25]

Each try makes three small sweeps of the candidate trainer on one system, one run per seed (`protocol.run_job` in
this process, the common metric evaluated only at the start and the end, the three runs of a seed interleaved):
a baseline; the same code again; and a slowed build whose every step first makes one extra forward and backward
pass of the network over the training observations. It gates the second and the third against the first with
`specbench gate`'s comparison (ratio of medians beyond the factor and a Mann-Whitney U test over the seeds) on
time per iteration, the wall-time measure these short runs decide (their time to target would only say whether
so short a budget sufficed), and prints how many tries raised a false alarm and how many caught the slow-down.
Timings on a shared machine are noisy: that is what the gate must stand.
"""
from __future__ import annotations

import argparse
import contextlib
import time

PER_ITERATION = ("time / iteration",)


@contextlib.contextmanager
def extra_network_pass(cls):
    """`cls` with one more forward and backward pass of its network per step (the step's result unchanged:
    the gradients of the extra pass are dropped before the real step)."""
    original = cls._step

    def slowed(self):
        self.model(None, self.tensor(self.data.train)).sum().backward()
        self.model.zero_grad(set_to_none=True)
        return original(self)

    cls._step = slowed
    try:
        yield
    finally:
        cls._step = original


def sweeps(system: str, trainer: str, seeds: int, budget_s: float) -> tuple[list[dict], list[dict], list[dict]]:
    """Three sweeps (baseline, the same again, slowed) of one run per seed of `trainer` on `system`, evaluated
    only at the start and end of the budget. The three runs of a seed are made one after the other, in an order
    that rotates with the seed, so a slow spell of the machine falls on all three alike (as asv interleaves its
    rounds)."""
    from specbench.registries import get_trainer
    from specbench.running.job import make_job
    from specbench.running.protocol import run_job

    rare = {"first": budget_s, "growth": 1.0, "max_interval": budget_s}
    out = ([], [], [])
    for seed in range(seeds):
        job = make_job(system, trainer, "dense", seed, budget_s=budget_s, threads=1, cadence=rare)
        for k in (seed % 3, (seed + 1) % 3, (seed + 2) % 3):
            with extra_network_pass(get_trainer(trainer)) if k == 2 else contextlib.nullcontext():
                out[k].append(run_job(job))
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    from specbench.claims.gate import ALPHA, compare, points
    from specbench.registries import candidate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--system", default="network")
    p.add_argument("--seeds", type=int, default=5, help="runs per sweep: the gate's samples a side")
    p.add_argument("--budget", type=float, default=0.3, help="training seconds per run")
    p.add_argument("--tries", type=int, default=10)
    p.add_argument("--factor", type=float, default=1.25)
    p.add_argument("--alpha", type=float, default=ALPHA)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    trainer = candidate()
    false_alarms = caught = 0
    t0 = time.perf_counter()
    for i in range(args.tries):
        base, same, slow = sweeps(args.system, trainer, args.seeds, args.budget)
        same_rows, alarms = compare(points(base), points(same), args.factor, args.alpha, PER_ITERATION)
        slow_rows, found = compare(points(base), points(slow), args.factor, args.alpha, PER_ITERATION)
        false_alarms += bool(alarms)
        caught += bool(found)
        print(f"try {i + 1}: HEAD vs HEAD {'ALARM' if alarms else 'pass'} ({_summary(same_rows)}); "
              f"slowed {'caught' if found else 'MISSED'} ({_summary(slow_rows)})", flush=True)
    print(f"\n{args.system} / {trainer}, {args.seeds} seeds a side, {args.budget:g} s per run, factor "
          f"{args.factor:g}, alpha {args.alpha:g}, {time.perf_counter() - t0:.0f} s in all")
    print(f"false alarms, HEAD against itself: {false_alarms} of {args.tries}")
    print(f"slowed step (one extra network pass) flagged: {caught} of {args.tries}")
    return 0


def _summary(rows: list[list[str]]) -> str:
    _, _, base, cand, ratio, p, _ = next(r for r in rows if r[1] == PER_ITERATION[0])
    return f"time / iteration {base} -> {cand} s, ratio {ratio}, p {p}"


if __name__ == "__main__":
    raise SystemExit(main())
