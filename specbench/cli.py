"""The `specbench` command. Bad input is one line on stderr and exit status 2, never a traceback.

The commands that train (run, study, tune, work, data) import their modules when they run: those load torch, which
the commands that only read records (report, gate, list's names) never need.
"""
from __future__ import annotations

import argparse
import errno
import math
import signal
import sys
import threading
from pathlib import Path

from specbench.claims.gate import gate, report_work
from specbench.core import workfile
from specbench.core.defaults import GATE_FACTOR, MAX_BUDGET_S, MAX_SEEDS, MAX_THREADS, MAX_WORKERS_PER_CORE, cores
from specbench.core.errors import UsageError
from specbench.core.io import check_writable, write_json_atomic
from specbench.core.records import REGIMES
from specbench.core.table import export, export_path
from specbench.registries import SYSTEMS, TRAINERS, equation_systems, get_system, use_plugins
from specbench.report.document import load, read, write, write_report
from specbench.report.readme import readme_block, readme_parts, update_readme
from specbench.running.presets import (PRESETS, REFERENCE_PRESET, SWEEP_PRESET, load_or_default, load_preset,
                                       budget_s_replaced)
from specbench.running.studies import STUDIES
from specbench.systems.measurements import read as read_measurements, write_csv


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage plus a message; we promise one line
        raise UsageError(message)


def _names(kind: str, valid) -> callable:
    """An argparse type for a comma-separated list of names from `valid`."""
    def parse(text: str) -> list[str]:
        names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))  # a name once, however given
        bad = [n for n in names if n not in valid]
        if bad or not names:
            raise UsageError(f"unknown {kind} {', '.join(map(repr, bad)) or repr(text)}; "
                             f"valid {kind}: {', '.join(valid)}")
        return names
    return parse


def _positive(kind: type, what: str, most: float | None = None, zero: bool = False) -> callable:
    """An argparse type: a finite number of `kind`, > 0 (>= 0 with zero=True), at most `most`."""
    def parse(text: str):
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            raise UsageError(f"{what} must be a {'non-negative' if zero else 'positive'} "
                             f"{'integer' if kind is int else 'number'}, got {text!r}") from None
        if not math.isfinite(value):
            raise UsageError(f"{what} must be finite, got {text!r}")
        if not (value >= 0 if zero else value > 0):
            raise UsageError(f"{what} must be {'non-negative' if zero else 'positive'}, got {text!r}")
        if most is not None and value > most:
            raise UsageError(f"{what} must be at most {most:g}, got {text!r}")
        return value
    return parse


def _plugins(argv: list[str]) -> None:
    """Load every `--plugin X` (or `--plugin=X`) before the parser is built, so plugin names are valid choices."""
    specs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--plugin"] + \
        [a.split("=", 1)[1] for a in argv if a.startswith("--plugin=")]
    if specs:
        use_plugins(specs)


def _path(text: str) -> Path:
    """An argparse type for a path: an empty one would silently mean the working directory."""
    if not text.strip():
        raise UsageError("an empty path is not a place to write to; give a file or directory name")
    return Path(text)


def _workers(text: str) -> int:
    """An argparse type for --workers: processes on this machine, at most MAX_WORKERS_PER_CORE per core."""
    workers, most = _positive(int, "--workers")(text), MAX_WORKERS_PER_CORE * cores()
    if workers > most:
        raise UsageError(f"--workers must be at most {most} ({MAX_WORKERS_PER_CORE} per core of this machine's "
                         f"{cores()} cores: more only time-share them; a cluster is --scheduler), got {text!r}")
    return workers


def _readme(text: str) -> Path:
    """An argparse type for --readme: a file that is read (for its verdict block) before it is written."""
    if not text.strip():
        raise UsageError("--readme: an empty path names no README; give the file that holds the verdict block")
    return Path(text)


def _one(kind: str, valid, plural: str = "") -> callable:
    """An argparse type for exactly one name from `valid`."""
    def parse(text: str) -> str:
        names = _names(plural or f"{kind}s", valid)(text)
        if len(names) != 1:
            raise UsageError(f"give one {kind}, got {text!r}")
        return names[0]
    return parse


def _executor_options(parser: argparse.ArgumentParser) -> None:
    """Where a sweep's runs happen: one at a time here (default), N Dask workers here, or a Dask cluster; and
    whether records of other settings already in --out may be overwritten."""
    parser.add_argument("--replace", action="store_true",
                        help="overwrite records in --out that other settings made (refused otherwise)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_workers, default=1,
                       help="runs at once on this machine, on a Dask LocalCluster of N single-threaded workers")
    where.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://host:8786")


def _budget_option(parser: argparse.ArgumentParser, default: str) -> None:
    """--budget, the same in every command that trains: the training seconds of each run (its record's budget_s),
    for every system and regime, in place of the default's."""
    parser.add_argument("--budget", dest="budget_s", metavar="SECONDS",
                        type=_positive(float, "--budget", most=MAX_BUDGET_S),
                        help=f"training seconds per run, every system and regime alike (default: {default})")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="specbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plugin = argparse.ArgumentParser(add_help=False)
    plugin.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE.py",
                        help="a module defining SYSTEMS and/or TRAINERS to add (repeatable; see README)")

    ls = sub.add_parser("list", help="systems, trainers and presets", parents=[plugin])
    ls.add_argument("--trainers", action="store_true",
                    help="only the registered trainers' names, comma-separated (for scripts: the Makefile's "
                    "ALL_TRAINERS)")

    d = sub.add_parser("data", help="write a dataset as .npz", parents=[plugin])
    d.add_argument("system", type=_one("system", SYSTEMS))
    d.add_argument("--regime", choices=REGIMES, default=REGIMES[0])
    d.add_argument("--noise", type=_positive(float, "--noise", most=10.0, zero=True), default=0.0)
    d.add_argument("--seed", type=_positive(int, "--seed", most=2 ** 32 - 1, zero=True), default=0)
    d.add_argument("--out", type=_path, required=True)

    r = sub.add_parser("run", help="run a sweep of training runs and write its records and report", parents=[plugin])
    r.add_argument("--preset", help=f"a preset's name (see `specbench list`) or a TOML file (default: {SWEEP_PRESET})")
    r.add_argument("--target", type=_positive(float, "--target"),
                   help="the common-metric target for every system (default: each system's own, or the preset's)")
    r.add_argument("--systems", type=_names("systems", SYSTEMS))
    r.add_argument("--data", type=Path, metavar="FILE",
                   help="your own measurements (CSV or NPZ, docs/data-format.md) as the one system, checked first")
    r.add_argument("--trainers", type=_names("trainers", TRAINERS))
    r.add_argument("--regimes", type=_names("regimes", REGIMES))
    r.add_argument("--seeds", type=_positive(int, "--seeds", most=MAX_SEEDS), help="number of seeds (0..N-1)")
    _budget_option(r, "the preset's budget_s")
    r.add_argument("--out", type=_path, default=Path("runs/latest"))
    r.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    r.add_argument("--threads", type=_positive(int, "--threads", most=MAX_THREADS))
    r.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    _executor_options(r)

    rp = sub.add_parser("report", help="markdown + HTML + figures from a directory of run records", parents=[plugin])
    rp.add_argument("dir", type=_path)
    rp.add_argument("--out", type=_path)
    rp.add_argument("--studies", type=Path, action="append", default=[],
                    help="a study's directory, or a directory of them, whose records join the report (repeatable)")
    rp.add_argument("--readme", type=_readme, help="also write the verdict table into this file's verdict block")
    rp.add_argument("--since", type=_path, metavar="DIR",
                    help="earlier records (a sweep's directory): a section lists each verdict that moved since them")
    rp.add_argument("--since-studies", type=Path, action="append", default=[], metavar="DIR",
                    help="the earlier records' studies, as --studies gives these ones' (repeatable)")

    ex = sub.add_parser("export", help="every run record as one row of a table, for a notebook: CSV, or Parquet "
                        "with pyarrow (the columns: docs/record.md)", parents=[plugin])
    ex.add_argument("dir", type=_path, help="a sweep's directory, or a directory of studies")
    ex.add_argument("--studies", type=Path, action="append", default=[],
                    help="a study's directory, or a directory of them, whose records join the table (repeatable)")
    ex.add_argument("--out", type=export_path, required=True, help="FILE.csv or FILE.parquet (with pyarrow)")

    g = sub.add_parser("gate", help="exit 1 when CANDIDATE regressed against BASELINE beyond --factor and the "
                       "noise (two sweep directories), or differs at all (two work files)")
    g.add_argument("baseline", type=_path)
    g.add_argument("candidate", type=_path)
    g.add_argument("--factor", type=_positive(float, "--factor"), default=GATE_FACTOR)
    g.add_argument("--alpha", type=_positive(float, "--alpha"),
                   help="significance level of the rank test over seeds (default: specbench.claims.gate.ALPHA)")

    w = sub.add_parser("work", help="work measures (iterations, network evaluations, bytes) of each system x "
                       "trainer: --out writes them, --check compares them exactly with a reference", parents=[plugin])
    w.add_argument("--systems", type=_names("systems", SYSTEMS))
    w.add_argument("--trainers", type=_names("trainers", TRAINERS))
    w.add_argument("--out", type=_path, help="write the work values here (e.g. results/work/reference.json)")
    w.add_argument("--check", type=Path, metavar="REFERENCE",
                   help="rerun with REFERENCE's settings; exit 1 naming system, trainer and measure on a mismatch")
    w.add_argument("--workers", type=_workers, default=1,
                   help="processes sharing the pairs (one thread each; the values do not depend on it)")

    st = sub.add_parser("study", help="run a scaling study (horizon, state-size, order, regimes) and report it",
                        parents=[plugin])
    st.add_argument("name", type=_one("study", STUDIES, "studies"))
    st.add_argument("--full", action="store_true", help="the bigger size: more values, seeds and budget")
    _budget_option(st, "the study's own for its size")
    st.add_argument("--seeds", type=_positive(int, "--seeds", most=MAX_SEEDS), help="number of seeds (0..N-1)")
    st.add_argument("--out", type=_path, help="default: runs/study-NAME")
    st.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    st.add_argument("--threads", type=_positive(int, "--threads", most=MAX_THREADS))
    st.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    _executor_options(st)

    t = sub.add_parser("tune", help="choose each trainer's settings per system and regime, by successive halving",
                       parents=[plugin])
    t.add_argument("--preset", help=f"whose systems, trainers, regimes, budget_s and targets (default: "
                   f"{REFERENCE_PRESET})")
    t.add_argument("--systems", type=_names("systems", SYSTEMS), help="default: the preset's")
    t.add_argument("--regimes", type=_names("regimes", REGIMES), help="default: the preset's")
    t.add_argument("--trainers", type=_names("trainers", TRAINERS), help="default: the preset's")
    _budget_option(t, "the preset's budget_s; B, the budget tuned for")
    t.add_argument("--seeds", type=_positive(int, "--seeds", most=100), default=3,
                   help="tuning seeds of the last rung (100, 101, ...), which the winner's scores are medians over")
    t.add_argument("--out", type=_path, default=Path("runs/tuning"), help="where the tuning records go")
    t.add_argument("--settings", type=_path, help="the tuned-settings file to update (default: OUT/tuned.toml; "
                   "a preset reads it with tuned = \"PATH\")")
    t.add_argument("--threads", type=_positive(int, "--threads", most=MAX_THREADS))
    _executor_options(t)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _handle_signals()
    try:
        _plugins(argv)
        args = build_parser().parse_args(argv)
        # work's values do not depend on its processes (nor on time): only the commands that time runs warn
        _warn_cores(getattr(args, "threads", None), getattr(args, "workers", 1) if args.command != "work" else 1)
        return COMMANDS[args.command](args) or 0
    except UsageError as exc:
        print(f"specbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"specbench: stopped by {signal.Signals(signum).name}; records already written are kept",
              file=sys.stderr)
        return 128 + signum
    except OSError as exc:  # a full disk or a vanished directory while writing: one line, nothing half-written
        where = f" {exc.filename}" if exc.filename else ""
        print(f"specbench: error: cannot write{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _warn_cores(threads: int | None, workers: int) -> None:
    """More threads per run, or more workers, than this machine has cores is allowed (a run's threads may go to
    another machine; a few workers too many cost little), but said: the runs' steps then time-share the cores, and
    their times are not what the machine can do."""
    for option, n, then in (("--threads", threads, "each run's threads will time-share them (fine for a remote "
                                                   "--scheduler, slow and noisy here)"),
                            ("--workers", workers, "the runs will time-share them; their times are slow and noisy")):
        if n and n > cores():
            print(f"specbench: warning: {option} {n} is more than this machine's {cores()} cores; {then}",
                  file=sys.stderr)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C: the running run is killed and reaped, finished records kept."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop_on(signum, frame):
    raise Terminated(signum)


def _handle_signals() -> None:
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _stop_on)


def cmd_list(args) -> int:
    if args.trainers:  # names alone: the registry's, plugins and entry points included, no built-in trainer imported
        print(",".join(TRAINERS.names()))
        return 0
    print("systems:")
    for name in SYSTEMS:
        s = get_system(name)
        if name == "file":
            print(f"  {name:18s} {s.kind:9s} your own measurements: specbench run --data FILE (docs/data-format.md)")
            continue
        print(f"  {name:18s} {s.kind:9s} {s.dim:3d} states, train span {s.t_span:g}, test horizon {s.test_horizon:g}")
    print("trainers:")
    for name, cls in TRAINERS.items():
        print(f"  {name:18s} {cls.role:10s} {cls.summary}")
    print("presets:")
    for name in sorted(PRESETS):
        print(f"  {name:18s} {load_preset(name).description}")
    print("studies:")
    for name, study in STUDIES.items():
        print(f"  {name:18s} {study.description}")
    return 0


def cmd_data(args) -> int:
    from specbench.systems.datasets import (as_measurements,  # scipy's solvers: not for the readers' commands
                                            make_dataset, save)

    data = make_dataset(get_system(args.system), args.regime, args.noise, args.seed)
    csv = args.out.suffix == ".csv"  # the measurement format a user's own data come in (docs/data-format.md)
    if not csv and data.needs:  # the NPZ holds full states on one grid per split, with no input
        raise UsageError(f"{args.system} ({args.regime}) has {', '.join(sorted(data.needs))}, which an NPZ file "
                         "cannot hold: write it as --out FILE.csv")
    try:
        if csv:
            write_csv(as_measurements(data), args.out)
        else:
            save(data, args.out)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror}") from None
    said = []
    for split in ("train", "test"):
        counts = sorted(len(r.t) for r in data.trajectories(split))
        said.append(f"{split} {len(counts)} trajector{'y' if len(counts) == 1 else 'ies'} of {counts[0]}" +
                    (f"-{counts[-1]}" if counts[-1] != counts[0] else "") + " samples")
    print(f"wrote {args.out}: " + ", ".join(said))
    return 0


def cmd_run(args) -> int:
    if args.data:
        if args.systems or (args.regimes and args.regimes != ["dense"]):
            raise UsageError("--data FILE is the one system, in its one regime (dense): leave out --systems and "
                             "--regimes")
        read_measurements(args.data)  # a bad file is one line and exit 2 before anything loads, trains or is written
    from specbench.running import sweeps  # loads torch: only the commands that train import it

    return _report_unless(args.no_report, sweeps.run_from_args(args))


def cmd_study(args) -> int:
    from specbench.running import sweeps  # loads torch: only the commands that train import it

    return _report_unless(args.no_report, sweeps.run_study(args))


def _report_unless(no_report: bool, out: Path) -> int:
    """The report of a sweep's records, which end up in `out`."""
    if not no_report:
        md, page = write_report(out, out)
        print(f"specbench: report {md} and {page}", file=sys.stderr)
    return 0


def cmd_tune(args) -> int:
    from specbench.running import executors, tuning  # load torch: only the commands that train import them

    settings = args.settings or args.out / "tuned.toml"
    try:  # find out now, not after all the training, that the settings cannot be written (atomically: in its dir)
        check_writable(settings.parent)
        if settings.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(settings))
    except OSError as exc:
        raise UsageError(f"cannot write the tuned settings to {settings}: {exc.strerror}") from None
    tuning.read_settings(settings)  # and that what is there is TOML
    preset, said = load_or_default(args.preset, REFERENCE_PRESET)
    cells = tuning.cells_of(preset, args.systems, args.regimes, args.budget_s)
    with executors.make_executor(args.workers, args.scheduler) as executor:  # said once the options pass its check
        for line in said + ([budget_s_replaced(preset, args.budget_s)] if args.budget_s else []):
            print(f"specbench tune: {line}", file=sys.stderr)
        tuned = tuning.tune(cells, args.trainers or preset.trainers, args.out, args.threads, settings, executor,
                          args.replace, args.seeds, preset)
    tuning.write_tuned(tuned, settings)
    print(f"wrote {settings}", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    if args.readme:
        readme_parts(args.readme)  # a README it cannot update is said now, before the report is written
    # the records read and every verdict decided once, for both (and the earlier ones, with --since)
    decided = read(args.dir, args.studies, args.since, args.since_studies)
    md, page = write(decided, args.out or args.dir)
    print(f"wrote {md} and {page}")
    if args.readme:
        update_readme(args.readme, readme_block(decided))
        print(f"updated the verdict block of {args.readme}")
    return 0


def cmd_export(args) -> int:
    records, _ = load(args.dir, args.studies)
    export(records, args.out)
    print(f"wrote {len(records)} records to {args.out}")
    return 0


def cmd_gate(args) -> int:
    return gate(args.baseline, args.candidate, args.factor, *([args.alpha] if args.alpha else []))


def cmd_work(args) -> int:
    from specbench.running.work_measures import (WorkIncomplete,  # loads torch: only the commands that train import it
                                                 work_table)

    if not (args.out or args.check):
        raise UsageError("work needs --out FILE, --check REFERENCE or both")
    reference = workfile.read(args.check) if args.check else None
    if reference is None or args.systems or args.trainers:
        pairs = [(s, t) for s in args.systems or equation_systems() for t in args.trainers or TRAINERS]
    else:  # the reference's pairs; a registered one it lacks is said, and the test of the reference covers them
        pairs = [(s, t) for s, by_trainer in reference["values"].items() for t in by_trainer]
        lacking = [f"{s} / {t}" for s in equation_systems() for t in TRAINERS if (s, t) not in pairs]
        if lacking:
            print(f"specbench: note: not in {args.check}: {', '.join(lacking)}", file=sys.stderr)
    settings = workfile.settings_of(reference) if reference else workfile.Settings()
    try:
        table = work_table(pairs, settings, log=lambda line: print(line, file=sys.stderr), workers=args.workers)
    except WorkIncomplete as exc:  # the pairs measured are kept beside --out (or in the lines above), not lost
        where = "the lines above"
        if args.out:
            where = workfile.incomplete_path(args.out)
            _write_work(where, exc.table)
            where = f"{where} (marked incomplete; {args.out} is left as it was)"
        print(f"specbench: error: {exc}; the {len(pairs) - len(exc.table['incomplete'])} measured are in {where}",
              file=sys.stderr)
        return 1
    if args.out:
        _write_work(args.out, table)
        print(f"wrote {args.out}", file=sys.stderr)
    if reference is None:
        return 0
    if not workfile.same_cpu(reference, table):
        print(f"specbench: note: {args.check} was made on {reference.get('env', {}).get('cpu')!r}, this machine is "
              f"{table['env'].get('cpu')!r}: network evaluations of adaptive solvers and the metric are compared "
              f"within {workfile.CROSS_CPU_RTOL:g} (round-off), everything else exactly", file=sys.stderr)
    return report_work(*workfile.compare(reference, table, pairs))


def _write_work(path: Path, table: dict) -> None:
    try:
        write_json_atomic(path, table)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


COMMANDS = {"list": cmd_list, "data": cmd_data, "run": cmd_run, "study": cmd_study, "tune": cmd_tune,
            "report": cmd_report, "export": cmd_export, "gate": cmd_gate, "work": cmd_work}
