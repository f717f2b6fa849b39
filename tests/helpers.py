"""What the tests share: the command line run in this process (and in a fresh one, for the few tests that need
it), the assertion on its one-line errors, the processes a command leaves, hand-made run records, small datasets
and a true vector field."""
import contextlib
import copy
import dataclasses
import io
import math
import os
import re
import signal
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch
from torch import nn

from specbench import cli, registries
from specbench.core.io import write_json_atomic
from specbench.core.records import SCHEMA, Record
from specbench.registries import get_system
from specbench.running.studies import vocabulary
from specbench.systems.datasets import generate

ROOT = Path(__file__).resolve().parents[1]  # the repository: its committed records, reports, scripts and Makefile

# ---- the command line ----------------------------------------------------------------------------------------------


def run_cli(*args, timeout=600, cwd=None) -> subprocess.CompletedProcess:
    """`specbench ARGS` (in `cwd`) as `python -m specbench ARGS` would run it, but in this process: its exit
    status, stdout and stderr (warnings and an uncaught exception's traceback included, as the interpreter prints
    them); the state it changes (working directory, environment, signal handlers, plugin registries) is put back.
    A run it starts is still a fresh process (specbench.running.executors). Raises TimeoutExpired after `timeout`
    seconds. Where the test needs a fresh `specbench` process (signals, exit, entry points), use `run_cli_process`."""
    argv = list(map(str, args))
    out, err = io.StringIO(), io.StringIO()
    with state_put_back(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            _warnings_shown_on(err), _time_limit(timeout, argv):
        if cwd is not None:
            os.chdir(cwd)
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # what `raise SystemExit(main())` in specbench/__main__.py makes of it
            code = exc.code
        except Exception:  # an uncaught exception: the interpreter prints its traceback and exits 1
            traceback.print_exc()
            code = 1
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    return subprocess.CompletedProcess(["specbench", *argv], code or 0, out.getvalue(), err.getvalue())


def run_cli_process(*args, timeout=600, cwd=None, env=None) -> subprocess.CompletedProcess:
    """`python -m specbench ARGS` in a fresh process (in `cwd`, with `env` added to this environment)."""
    return subprocess.run([sys.executable, "-m", "specbench", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)


def start_cli(*args, **popen) -> subprocess.Popen:
    """`python -m specbench ARGS` started in a fresh process and left running, for a test that signals or kills it:
    its stderr a text pipe unless `popen` (subprocess.Popen's keywords) says otherwise."""
    return subprocess.Popen([sys.executable, "-m", "specbench", *map(str, args)],
                            **{"stderr": subprocess.PIPE, "text": True, **popen})


def one_line_exit_2(proc, needle, alone=False):
    """Exit 2, no traceback, and one error line that says `needle` (a sweep may have said what it plans first;
    alone=True: nothing else on stderr)."""
    errors = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("specbench: error:")]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(errors) == 1 and needle in errors[0], proc.stderr
    assert not alone or len(proc.stderr.strip().splitlines()) == 1, proc.stderr


class _TimedOut(BaseException):  # not an Exception: nothing on the way may take it for the command's own error
    pass


@contextlib.contextmanager
def _time_limit(seconds: float, argv: list[str]):
    """TimeoutExpired, as subprocess.run raises it, when the command runs past `seconds`."""
    def stop(signum, frame):
        raise _TimedOut

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _TimedOut:
        raise subprocess.TimeoutExpired(["specbench", *argv], seconds) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _warnings_shown_on(stream):
    """Python's default warning filters, shown on `stream`, as a fresh process would show them on its stderr
    (pytest otherwise collects them, and a test of 'one line on stderr' would miss them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=category)
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: stream.write(
            warnings.formatwarning(message, category, filename, lineno, line))
        yield


@contextlib.contextmanager
def state_put_back():
    """The process state a command changes, as it was: working directory, environment (SPECBENCH_PLUGINS),
    SIGTERM and SIGHUP handlers (cli._handle_signals), the registries and the plugins loaded into them."""
    cwd, environ = os.getcwd(), dict(os.environ)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with registries_put_back():
            yield
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        for s, handler in handlers.items():
            if handler is not None:  # None: not set from Python, and signal.signal cannot put it back
                signal.signal(s, handler)


@contextlib.contextmanager
def registries_put_back():
    """The registries, and the plugins loaded into them, as they were: a plugin loaded inside (by a command, a test,
    or a failure record that needs its trainer's role) is gone after."""
    saved = [(r, {k: copy.copy(v) for k, v in vars(r).items()}) for r in (registries.SYSTEMS, registries.TRAINERS)]
    loaded, modules = dict(registries._loaded), set(sys.modules)
    try:
        yield
    finally:
        for registry, state in saved:
            vars(registry).clear()
            vars(registry).update(state)
        registries._loaded.clear()
        registries._loaded.update(loaded)
        for name in set(sys.modules) - modules:  # a plugin file's module (registries.load_plugin names it so)
            if name.startswith("specbench_plugin_"):
                del sys.modules[name]


# ---- the processes a command leaves --------------------------------------------------------------------------------


def wait_for(predicate, timeout: float = 120) -> bool:
    """Ask `predicate` every 50 ms until it holds (True) or `timeout` seconds have passed (False); once it holds it
    is not asked again, so it may act (kill what it found)."""
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


def gone(pid: int, timeout: float = 10) -> bool:
    """The process has ended (or is a zombie) within `timeout` seconds."""
    return wait_for(lambda: not alive(pid), timeout)


def processes(name: bytes = b"", parent: int | None = None, session: int | None = None,
              environ: bytes | None = None) -> list[int]:
    """The live processes whose command line holds `name`, and where given: whose parent is `parent`, in session
    `session`, with `environ` in their environment."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        pid = int(proc.name)
        try:
            if name not in (proc / "cmdline").read_bytes() or not alive(pid):
                continue
            if parent is not None and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) != parent:
                continue
            if session is not None and os.getsid(pid) != session:
                continue
            if environ is not None and environ not in (proc / "environ").read_bytes():
                continue
        except (OSError, IndexError, ValueError):  # ended while read, or not ours to read
            continue
        found.append(pid)
    return found



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
