"""The overhead of a sweep: its wall time over the training time it bought, wall / (sum of budgets / workers), and
where its runs' wall time went (each record's `wall`, specbench.core.records.WALL_PARTS). 1.0 would be a harness that
costs nothing beyond training. Usage:

    python scripts/overhead.py DIR [--wall SECONDS] [--workers N]

DIR is a sweep's --out (its records in DIR/runs), a study's, or a tuning directory (every DIR/**/runs). The sweep's
wall time is --wall where given (measured around the command, the figure to quote), else it is estimated from the
files: from the earliest of the sweep locks' times (written when a sweep starts) and the records' own starts (their
write time less their `wall.total`) to the last record written. Records made before they kept a breakdown (issue
37) still give the overhead from --wall or the file times; only the breakdown is then missing.

The issue's three figures, each before (on the commit before) and after, on a quiet machine, from the repository
root with the project's environment (`.venv/bin/specbench` or `python -m specbench`; OMP_NUM_THREADS=1), each into
a directory that does not exist yet (a sweep resumes what it finds):

1. `make run` (the quick preset: 5 systems x 4 trainers, dense, 1 seed, 15 s budgets, 2 workers; with its report):
       /usr/bin/time -f %e -o /tmp/overhead-run.s make run OUT=/tmp/overhead/run
       python scripts/overhead.py /tmp/overhead/run --wall $(cat /tmp/overhead-run.s)
2. a tuning of 2 systems x 6 trainers at B = 20 s (dense; rung 1: 144 runs of 2.2 s), 2 workers:
       /usr/bin/time -f %e -o /tmp/overhead-tune.s specbench tune --preset paper --systems oscillator,lotka-volterra \
           --regimes dense --trainers spectral,spectral-2stage,backprop-rk4,backprop-dopri5,adjoint-dopri5,vf-node \
           --budget 20 --workers 2 --threads 1 --out /tmp/overhead/tune
       python scripts/overhead.py /tmp/overhead/tune --wall $(cat /tmp/overhead-tune.s)
3. a 20-run sweep at 1 s budgets (the quick preset's runs), 2 workers, no report:
       /usr/bin/time -f %e -o /tmp/overhead-short.s specbench run --preset quick --budget 1 --workers 2 --threads 1 \
           --no-report --out /tmp/overhead/short
       python scripts/overhead.py /tmp/overhead/short --wall $(cat /tmp/overhead-short.s)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from specbench.core.measures import LOST, wall_time
from specbench.core.records import WALL_PARTS, load_dir
from specbench.running.studies import vocabulary


def records_under(directory: Path) -> tuple[list, list[Path]]:
    """The records of every runs/ directory under `directory` (or in it), and the files they were read from."""
    dirs = sorted({p.parent for p in directory.rglob("runs/*.json")}) or [directory]
    records, files = [], []
    for d in dirs:
        found, warnings = load_dir(d, vocabulary())
        for w in warnings:
            print(f"overhead: warning: {w}", file=sys.stderr)
        records += found
        files += [d / r.name for r in found]
    return records, files


def file_wall(directory: Path, records: list, files: list[Path]) -> float | None:
    """The sweep's wall time from its files: the earliest lock or record start to the last record written."""
    ends = [f.stat().st_mtime for f in files if f.exists()]
    if not ends:
        return None
    starts = [lock.stat().st_mtime for lock in directory.rglob(".lock")]
    starts += [f.stat().st_mtime - r.wall["total"] for r, f in zip(records, files) if r.wall and "total" in r.wall]
    return max(ends) - min(starts + ends)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--wall", type=float, help="the sweep's wall time in seconds, measured around its command")
    parser.add_argument("--workers", type=int, help="workers it ran on (default: what its records say)")
    args = parser.parse_args(argv)
    records, files = records_under(args.directory)
    if not records:
        print(f"overhead: no run records under {args.directory}", file=sys.stderr)
        return 2
    workers = args.workers or max((r.env.get("workers") or 1 for r in records), default=1)
    budgets = sum(r.budget_s for r in records)
    wall = args.wall if args.wall is not None else file_wall(args.directory, records, files)
    source = "measured" if args.wall is not None else "from the files' times"
    print(f"{args.directory}: {len(records)} runs, {budgets:.1f} s of budgets on {workers} worker"
          f"{'s' * (workers != 1)}: {budgets / workers:.1f} s of training per worker")
    print(f"sweep wall time: {wall:.1f} s ({source})")
    print(f"overhead: wall / (budgets / workers) = {wall / (budgets / workers):.2f}x")
    w = wall_time(records)
    if not w.timed:
        print("no record keeps where its wall time went (made before records did)")
        return 0
    print(f"the runs' wall time on their workers: {w.total:.1f} s over {w.timed} runs = {w.overhead:.2f}x their "
          "budgets" + (f" ({w.untimed} runs without a breakdown left out)" if w.untimed else ""))
    persistent = sum(r.env.get("process") == "persistent" for r in records)
    if persistent:
        print(f"{persistent} of {len(records)} runs in persistent workers")
    for part in (*WALL_PARTS, LOST):
        seconds = w.parts[part]
        print(f"  {part:<12} {seconds:9.1f} s  {seconds / w.total:6.1%}  {seconds / w.timed:7.3f} s per run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
