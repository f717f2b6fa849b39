"""One training step of torchode's two adjoints against torchdiffeq's, on the same problem, settings, batch and
weights: the evidence behind torchode-adjoint's choice of `JointBacksolveAdjoint` (specbench/trainers/
torchode_solver.py). Usage: python scripts/profile_torchode_adjoint.py [SYSTEM REGIME BATCH SEGMENT_LENGTH]

Measured on this 2-core machine (other work running beside it), one thread, lotka-volterra dense, rtol 1e-5 (ms
per step; gradients against torchode's autodiff, relative difference):
  batch 16, segments of 20:  BacksolveAdjoint 548, JointBacksolveAdjoint 281, torchdiffeq adjoint 338, autodiff 43
  batch 128, segments of 10: BacksolveAdjoint 1378, JointBacksolveAdjoint 192, torchdiffeq adjoint 231, autodiff 41
  every gradient within 1e-5 of autodiff's. BacksolveAdjoint spends three quarters of its time in the vmap of a
  per-sample VJP: it carries each sample's own copy of every parameter's adjoint, so its cost grows with the batch.
"""
import cProfile
import io
import pstats
import statistics
import sys
import time

import torch
import torchode

from specbench.running.job import make_job
from specbench.running.protocol import build


def trainer(name, system, regime, config):
    return build(make_job(system, name, regime, 0, budget_s=10, threads=1, config=config))[2]()


def with_per_sample_adjoint(tr):
    """The torchode-adjoint trainer on torchode's BacksolveAdjoint (per-sample parameter adjoints)."""
    term = torchode.ODETerm(tr.model, with_stats=False)
    tr.solver = torchode.BacksolveAdjoint(term, torchode.Dopri5(term=term),
                                          torchode.IntegralController(atol=tr.config["atol"], rtol=tr.config["rtol"],
                                                                      term=term))
    tr.solve = tr.solver.solve
    tr.backward = lambda loss: loss.backward()
    return tr


def gradient(tr):
    tr.generator.manual_seed(0)
    x0, target = tr.batch()
    tr.optimizer.zero_grad()
    tr.backward((((tr.rollout(x0) - target) / tr.std) ** 2).mean())
    return torch.cat([p.grad.flatten() for p in tr.model.parameters()])


def seconds_per_step(tr, n=5):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        tr.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main(system="lotka-volterra", regime="dense", batch="16", segment="20"):
    torch.set_num_threads(1)
    config = {"lr": 1e-2, "batch_size": int(batch), "segment_length": int(segment), "rtol": 1e-5, "atol": 1e-6}
    trainers = {"torchode BacksolveAdjoint": with_per_sample_adjoint(trainer("torchode-adjoint", system, regime,
                                                                            config)),
                "torchode JointBacksolveAdjoint (torchode-adjoint)": trainer("torchode-adjoint", system, regime,
                                                                           config),
                "torchdiffeq adjoint (adjoint-dopri5)": trainer("adjoint-dopri5", system, regime, config),
                "torchode autodiff (torchode-dopri5)": trainer("torchode-dopri5", system, regime, config)}
    reference = gradient(trainers["torchode autodiff (torchode-dopri5)"])
    for name, tr in trainers.items():
        rel = float((gradient(tr) - reference).norm() / reference.norm())
        print(f"{name:50s} {seconds_per_step(tr) * 1e3:8.1f} ms/step   gradient vs autodiff {rel:.1e}")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(3):
        trainers["torchode BacksolveAdjoint"].step()
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(15)
    print("BacksolveAdjoint, three steps:\n" + out.getvalue())


if __name__ == "__main__":
    main(*sys.argv[1:])
