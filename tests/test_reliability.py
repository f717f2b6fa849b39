"""Reliability, round three (issue 36): each case failed before its fix. Bad input is one line and a non-zero exit
(2 for usage), never a traceback, found before any work where it can be, and no result already made is lost."""
import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from specbench.cli import main
from specbench.core import workfile
from specbench.core.defaults import MAX_WORKERS_PER_CORE, cores
from specbench.core.errors import UsageError
from specbench.registries import load_plugin
from specbench.report.document import markdown_tables_only, sources
from specbench.report.readme import README_BEGIN, README_END, update_readme
from specbench.running import presets
from specbench.running.presets import load_preset, read_toml
from specbench.running.sweeps import plan
from tests.helpers import ROOT, gone, make_record, one_line_exit_2, processes, run_cli, save, start_cli, sweep, wait_for



@pytest.fixture
def records_dir(tmp_path):
    """A small sweep's records, for the report."""
    for r in sweep(spec=(1.0,)):
        save(tmp_path / "records" / "runs" / f"{r.system}__{r.trainer}__{r.regime}__seed{r.seed}.json", r)
    return tmp_path / "records"


# ---- case 1 (and 5): a README the report cannot update ---------------------------------------------------------

README = f"# x\n\n{README_BEGIN}\nold\n{README_END}\n"
SWAPPED = f"# x\n\n{README_END}\nold\n{README_BEGIN}\n"


def _readme(content: bytes):
    def make(tmp_path):
        (tmp_path / "README.md").write_bytes(content)
        return tmp_path / "README.md"
    return make


@pytest.mark.parametrize("readme, needle", [
    (_readme(SWAPPED.encode()), "ends before it begins"),
    (_readme(README.replace("old", "caf\xe9").encode("latin-1")), "is not UTF-8 text (byte 0xe9"),
    (lambda tmp_path: "", "--readme: an empty path names no README"),
    (lambda tmp_path: tmp_path / "missing" / "README.md", "cannot read the README"),
    (lambda tmp_path: tmp_path, "is a directory, not a README"),
])
def test_a_readme_it_cannot_update_is_one_line_before_any_work(tmp_path, records_dir, readme, needle):
    path = readme(tmp_path)
    before = Path(path).read_bytes() if Path(path).is_file() else None
    proc = run_cli("report", records_dir, "--out", tmp_path / "out", "--readme", path)
    one_line_exit_2(proc, needle)
    assert "cannot write" not in proc.stderr and not (tmp_path / "out" / "report.md").exists()
    if before is not None:
        assert Path(path).read_bytes() == before


def test_a_readme_block_is_replaced_and_nothing_else(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("caf\xe9 " + README + "tail <!-- /verdicts -->\n", encoding="utf-8")
    update_readme(readme, f"{README_BEGIN}\nnew\n{README_END}")
    assert readme.read_text(encoding="utf-8") == ("caf\xe9 " + README).replace("old", "new") + \
        "tail <!-- /verdicts -->\n"


# ---- case 5: a --plugin that is a directory -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["plugins", "plugin.py"])
def test_a_plugin_that_is_a_directory_says_so(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(UsageError, match=f"plugin {tmp_path / name}/? is a directory"):
        load_plugin(f"{tmp_path / name}/" if name == "plugins" else str(tmp_path / name))


# ---- case 3: --workers bounded by the cores ------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "work"])
def test_more_workers_than_a_few_per_core_is_refused_before_any_work(tmp_path, command):
    most = MAX_WORKERS_PER_CORE * cores()
    # were the number taken, what follows would stop the command at once (no preset, no reference), not train
    stop = ["--preset", tmp_path / "missing.toml"] if command == "run" else ["--check", tmp_path / "missing.json"]
    proc = run_cli(command, *stop, "--out", tmp_path / "out", "--workers", most + 1)
    one_line_exit_2(proc, f"--workers must be at most {most}", alone=True)
    assert f"{cores()} cores" in proc.stderr


def test_more_workers_than_cores_is_said(tmp_path, capsys):
    status = main(["run", "--workers", str(cores() + 1), "--preset", str(tmp_path / "missing.toml")])
    err = capsys.readouterr().err
    assert status == 2 and f"--workers {cores() + 1} is more than this machine's {cores()} cores" in err, err


# ---- case 4: scripts/reference-at-commit.sh checks before it touches a worktree ---------------------------------

def _git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("commit, part, needle", [("HEAD", "bogus", "unknown part bogus"),
                                                  ("nosuchcommit", "sweep", "unknown commit nosuchcommit")])
def test_reference_at_commit_checks_its_arguments_before_touching_a_worktree(tmp_path, commit, part, needle):
    repo = tmp_path / "repo"  # a repository of its own: the script makes and moves worktrees of the one it is in
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "reference-at-commit.sh", repo / "scripts")
    _git(repo, "init", "-q")
    for message in ("first", "second"):
        _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", message)
    _git(repo, "add", "scripts")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "script")
    first = _git(repo, "rev-list", "--max-parents=0", "HEAD")
    for ref in (tmp_path / "new", tmp_path / "old"):
        if ref.name == "old":
            _git(repo, "worktree", "add", "-q", "--detach", str(ref), first)
        proc = subprocess.run(["bash", str(repo / "scripts" / "reference-at-commit.sh"), commit, part, str(ref)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
            proc.stderr
    assert not (tmp_path / "new").exists() and _git(tmp_path / "old", "rev-parse", "HEAD") == first
    assert len(_git(repo, "worktree", "list").splitlines()) == 2  # the repository and "old", nothing new


# ---- case 6: the tuned settings read once per sweep plan -------------------------------------------------------

def test_a_sweep_plan_reads_the_tuned_settings_once(tmp_path, monkeypatch):
    tuned = tmp_path / "tuned.toml"
    reads = []

    def counted(path):
        reads.extend([path] if path == tuned else [])
        return read_toml(path)

    monkeypatch.setattr(presets, "read_toml", counted)
    tuned.write_text("[oscillator.dense.spectral]\nlr = 0.01\n")
    preset = dataclasses.replace(load_preset("quick"), systems=["oscillator"], trainers=["spectral"], seeds=50,
                                 tuned=str(tuned))
    jobs = plan(preset, threads=1)
    assert len(jobs) == 50 and {j.config["lr"] for j in jobs} == {0.01} and len(reads) == 1
    tuned.write_text("[oscillator.dense.spectral]\nlr = 0.002\n")  # `specbench tune` rewrote it: read again
    assert {j.config["lr"] for j in plan(preset, threads=1)} == {0.002} and len(reads) == 2


# ---- case 2: work --workers with a pool process killed ----------------------------------------------------------

HANGS = '''import os, time
from specbench.trainers.solver import TorchdiffeqTrainer

class Hangs(TorchdiffeqTrainer):
    """Says its process id, then waits to be killed."""
    def __init__(self, *args, **kwargs):
        with open(os.environ["HANGS_PID"] + ".tmp", "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(os.environ["HANGS_PID"] + ".tmp", os.environ["HANGS_PID"])
        time.sleep(600)

TRAINERS = {"hangs": Hangs}
'''


@pytest.mark.slow
def test_a_work_process_killed_loses_no_measured_pair_and_no_written_file(tmp_path):
    """The pairs measured before a pool process died are written beside --out, marked incomplete (never over it:
    a complete file already there stays), the exit status is 1 with one line, and the incomplete file is refused as
    a reference."""
    (tmp_path / "hangs.py").write_text(HANGS)
    out, pid = tmp_path / "work.json", tmp_path / "pid"
    out.write_text("a complete work file from before\n")
    proc = start_cli("work", "--systems", "oscillator", "--trainers", "spectral,hangs", "--workers", "2", "--out", out,
                     "--plugin", tmp_path / "hangs.py", env={**os.environ, "HANGS_PID": str(pid)})
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        wait_for(lambda: pid.exists() and any(ln.startswith("oscillator / spectral:") for ln in lines), timeout=300)
        os.kill(int(pid.read_text()), signal.SIGKILL)
        proc.wait(timeout=120)
    finally:
        proc.kill()
    reader.join(timeout=10)
    stderr = "".join(lines)
    errors = [ln for ln in lines if ln.startswith("specbench: error:")]
    assert proc.returncode == 1 and "Traceback" not in stderr and len(errors) == 1, stderr
    assert "oscillator / hangs" in errors[0] and "work.incomplete.json" in errors[0], stderr
    assert out.read_text() == "a complete work file from before\n"
    partial = json.loads((tmp_path / "work.incomplete.json").read_text())
    assert partial["incomplete"] == ["oscillator / hangs"] and list(partial["values"]["oscillator"]) == ["spectral"]
    with pytest.raises(UsageError, match="is incomplete"):
        workfile.read(tmp_path / "work.incomplete.json")


# ---- case 7: prose and board agree; the regenerate line runs; a killed run leaves no temporary files ----------

@pytest.mark.parametrize("memory, says", [(395_000, "C3 fails in oscillator dense"), (None, "no claim is decided")])
def test_a_report_of_failed_runs_says_what_its_board_decides(tmp_path, memory, says):
    save(tmp_path / "runs" / "a.json", make_record(status="diverged"))
    save(tmp_path / "runs" / "b.json", make_record(trainer="backprop-rk4", status="diverged", memory=memory))
    text = markdown_tables_only(tmp_path, tmp_path / "out")
    intro = next(line for line in text.splitlines() if line.startswith("Made from"))
    board = next(line for line in text.splitlines() if line.startswith("| **C3** "))
    assert "**No run was ok** (2 diverged)" in intro and says in intro, intro
    assert ("fails" in board) == (memory is not None), board


def test_the_regenerate_command_runs_as_printed_for_paths_with_spaces():
    command = sources(Path("my runs/x"), [Path("a study's dir")])
    assert shlex.split(command) == ["specbench", "report", "my runs/x", "--studies", "a study's dir"]
    assert sources(Path("results/reference"), []) == "specbench report results/reference"  # plain paths stay bare


@pytest.mark.slow
def test_a_sweep_killed_with_sigkill_leaves_no_temporary_files(tmp_path):
    """A run's job and record travel through its process's pipes, not through a temporary directory that nobody is
    left to remove once the sweep (or the Dask worker) that made it is killed."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = start_cli("run", "--systems", "oscillator", "--trainers", "spectral", "--threads", "1", "--budget", "60",
                     "--no-report", "--out", tmp_path / "o", stderr=subprocess.DEVNULL,
                     env={**os.environ, "TMPDIR": str(tmp)})
    try:
        assert wait_for(lambda: processes(b"specbench.running.worker", parent=proc.pid)), "no run process started"
        [run] = processes(b"specbench.running.worker", parent=proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert gone(run, timeout=30), "the run outlived its sweep"
    finally:
        proc.kill()
    assert not list(tmp.iterdir())
