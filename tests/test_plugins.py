"""Systems and trainers from outside the package: the example plugin through every command, entry points, and
the one-line errors of a broken plugin."""
import os
import subprocess
import sys
import textwrap
import tomllib

import pytest

from specbench.core.records import load
from tests.helpers import ROOT, one_line_exit_2, run_cli, run_cli_process, state_put_back

PLUGIN = ROOT / "examples" / "pendulum_plugin.py"


def test_list_shows_the_plugins_system_and_trainer_with_its_role():
    proc = run_cli("list", "--plugin", PLUGIN)
    assert proc.returncode == 0, proc.stderr
    assert "pendulum" in proc.stdout and "backprop-euler     baseline" in proc.stdout


@pytest.mark.slow
def test_data_run_and_report_with_a_plugin(tmp_path):
    proc = run_cli("data", "pendulum", "--plugin", PLUGIN, "--out", tmp_path / "p.npz")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "sweep"
    # the sweep as a user starts it, in a fresh process: the plugin reaches its run processes from a clean registry
    proc = run_cli_process("run", "--plugin", PLUGIN, "--systems", "pendulum", "--trainers", "spectral,backprop-euler",
                   "--budget", "0.2", "--threads", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "no tuned settings for pendulum / dense / backprop-euler, pendulum / dense / spectral" in proc.stderr
    records = [load(p) for p in (out / "runs").glob("*.json")]
    assert {(r.system, r.trainer, r.status) for r in records} == {
        ("pendulum", "spectral", "ok"), ("pendulum", "backprop-euler", "ok")}
    assert all(r.target_loss == 2e-2 for r in records)  # the plugin system's own target
    text = (out / "report.md").read_text()
    assert "vs backprop-euler" in text and "| C1 | pendulum | dense |" in text
    proc = run_cli("report", out, "--plugin", PLUGIN, "--out", tmp_path / "again")
    assert proc.returncode == 0 and (tmp_path / "again" / "report.md").read_text() == text


@pytest.mark.slow
def test_tune_with_a_plugin_writes_its_own_settings_file(tmp_path):
    proc = run_cli("tune", "--plugin", PLUGIN, "--systems", "pendulum", "--regimes", "dense", "--trainers",
                   "backprop-euler", "--budget", "0.3", "--seeds", "2", "--threads", "1", "--out", tmp_path / "tuning")
    assert proc.returncode == 0, proc.stderr
    entry = tomllib.loads((tmp_path / "tuning" / "tuned.toml").read_text())["pendulum"]["dense"]["backprop-euler"]
    assert entry["tuned_budget_s"] == 0.3 and entry["tuned_seeds"] == 2  # not tune's default (3)


@pytest.mark.slow
def test_studies_and_asv_see_plugins_through_the_environment():
    code = textwrap.dedent("""
        from specbench.running import asv_runs
        from specbench.running.studies import STUDIES, Size
        print(asv_runs.systems(), asv_runs.trainers())
        print(sorted({j.trainer for j in STUDIES["state-size"].plan(Size(False, 1, "cpu", 1))}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "SPECBENCH_PLUGINS": str(PLUGIN)})
    assert proc.returncode == 0, proc.stderr
    assert "pendulum" in proc.stdout.splitlines()[0] and "backprop-euler" in proc.stdout.splitlines()[1]


def test_asv_parameter_lists_refuse_unknown_names(monkeypatch):
    from specbench.core.errors import UsageError
    from specbench.running import asv_runs

    monkeypatch.setenv("SPECBENCH_ASV_SYSTEMS", "nope")  # read when the lists are made, not at import
    with pytest.raises(UsageError, match="SPECBENCH_ASV_SYSTEMS: unknown nope"):
        asv_runs.systems()


def test_asv_memory_runs_take_their_budget_from_one_variable_with_one_default(monkeypatch):
    from specbench.core.errors import UsageError
    from specbench.running import asv_runs

    monkeypatch.delenv("SPECBENCH_ASV_BUDGET_S", raising=False)
    monkeypatch.delenv("SPECBENCH_ASV_BUDGET", raising=False)
    assert asv_runs.memory_budget_s() == asv_runs.BUDGET_S == 1.0
    monkeypatch.setenv("SPECBENCH_ASV_BUDGET_S", "2.5")
    assert asv_runs.memory_budget_s() == 2.5
    for bad in ("fast", "-1", "nan", "inf"):
        monkeypatch.setenv("SPECBENCH_ASV_BUDGET_S", bad)
        with pytest.raises(UsageError, match="SPECBENCH_ASV_BUDGET_S must be a positive number"):
            asv_runs.memory_budget_s()
    monkeypatch.setenv("SPECBENCH_ASV_BUDGET", "5")  # the old name is said, not silently ignored
    with pytest.raises(UsageError, match="SPECBENCH_ASV_BUDGET is now SPECBENCH_ASV_BUDGET_S"):
        asv_runs.memory_budget_s()


@pytest.mark.slow
def test_entry_points_register_without_a_flag(tmp_path):
    site = tmp_path / "site"
    dist = site / "pendulum_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "pendulum_plugin.py").write_text(PLUGIN.read_text())
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pendulum-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[specbench.systems]\npendulum = pendulum_plugin:Pendulum\n\n"
                                           "[specbench.trainers]\nbackprop-euler = pendulum_plugin:BackpropEuler\n")
    # a fresh process: entry points are read once per process, from the distributions on its path
    proc = run_cli_process("list", env={"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])})
    assert proc.returncode == 0, proc.stderr
    assert "pendulum" in proc.stdout and "backprop-euler" in proc.stdout


BROKEN = {
    "raises": ("raise RuntimeError('boom')", "failed to import: RuntimeError: boom"),
    "empty": ("X = 1", "defines no SYSTEMS or TRAINERS"),
    "bad role": ("from specbench.trainers.solver import SolverTrainer\n"
                 "class T(SolverTrainer):\n    role = 'referee'\nTRAINERS = {'t': T}", "has role 'referee'"),
    "not a trainer": ("TRAINERS = {'t': int}", "is not a subclass of specbench.trainers.base.Trainer"),
    "no target": ("from dataclasses import dataclass\nfrom specbench.systems.oscillator import Oscillator\n"
                  "@dataclass\nclass S(Oscillator):\n    target: float = None\nSYSTEMS = {'s': S}",
                  "has no positive target"),
    "name taken": ("from specbench.systems.oscillator import Oscillator\n"
                   "class S(Oscillator):\n    pass\nSYSTEMS = {'oscillator': S}", "already registered"),
    "no sparse": ("from dataclasses import dataclass, field\nfrom specbench.systems.base import Regime\n"
                  "from specbench.systems.oscillator import Oscillator\n@dataclass\nclass S(Oscillator):\n"
                  "    regimes: dict = field(default_factory=lambda: {'dense': Regime(4, 2, 11)})\nSYSTEMS = {'s': S}",
                  "has no regime sparse"),
}


def test_a_measured_plugin_system_registers_with_its_one_regime_and_runs(tmp_path):
    """A measured system (kind "measured": its data, one regime) is a plugin like any other: registered without a
    sparse regime, which an equation system still needs (BROKEN["no sparse"])."""
    csv = tmp_path / "m.csv"
    run_cli("data", "oscillator", "--regime", "sparse", "--out", csv)
    path = tmp_path / "measured_plugin.py"
    path.write_text("from dataclasses import dataclass\nfrom specbench.systems.measured import MeasuredFile\n"
                    f"@dataclass\nclass Mine(MeasuredFile):\n    name: str = 'mine'\n    path: str = {str(csv)!r}\n"
                    "SYSTEMS = {'mine': Mine}\n")
    proc = run_cli("list", "--plugin", path)
    assert proc.returncode == 0 and "mine" in proc.stdout, proc.stderr
    out = tmp_path / "runs"
    proc = run_cli("run", "--plugin", path, "--systems", "mine", "--regimes", "dense", "--trainers", "spectral",
                   "--seeds", "1", "--budget", "1", "--no-report", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert len(list((out / "runs").glob("mine__spectral__dense__seed0.json"))) == 1


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_plugin_is_one_line_and_exit_2(tmp_path, case):
    source, message = BROKEN[case]
    path = tmp_path / "broken.py"
    path.write_text(source)
    one_line_exit_2(run_cli("list", "--plugin", path), message, alone=True)


def test_unknown_plugin_module_and_file_are_exit_2(tmp_path):
    for spec in ("no_such_module_anywhere", str(tmp_path / "missing.py")):
        one_line_exit_2(run_cli("list", "--plugin", spec), "plugin")


@pytest.mark.slow
def test_asv_memory_runs_come_back_from_fresh_processes(monkeypatch):
    """The records behind asv's memory track: one protocol run per pair, each in its own process."""
    from specbench.running import asv_runs

    monkeypatch.setenv("SPECBENCH_ASV_SYSTEMS", "oscillator")
    monkeypatch.setenv("SPECBENCH_ASV_TRAINERS", "spectral")
    runs = asv_runs.memory_runs(0.2)
    assert sorted((k, v.status) for k, v in runs.items()) == [(("oscillator", "spectral"), "ok")]


NEWCOMER = '''
from specbench.trainers.solver import BackpropRK4


class Newcomer(BackpropRK4):
    summary = "backprop-rk4 under another name: a trainer added by one class and one registry line"


TRAINERS = {"newcomer": Newcomer}
'''


@pytest.mark.slow
def test_a_trainer_added_by_one_class_and_one_registry_line_is_in_every_list(tmp_path):
    """A new trainer (one class, one line in a registry: here a plugin's) is, with no other edit, in `specbench
    list`, the paper preset's trainers, the Makefile's reference target and the trainer tests' parameters."""
    from specbench.registries import TRAINERS, use_plugins
    from specbench.running.presets import load_preset

    plugin = tmp_path / "newcomer.py"
    plugin.write_text(NEWCOMER)
    every = ",".join([*TRAINERS.names(), "newcomer"])
    listed = run_cli("list", "--plugin", plugin)
    assert listed.returncode == 0 and "newcomer           baseline" in listed.stdout, listed.stderr
    assert run_cli("list", "--trainers", "--plugin", plugin).stdout.strip() == every
    with state_put_back():  # the plugin joins the registries and SPECBENCH_PLUGINS here only
        use_plugins([str(plugin)])
        assert ",".join(load_preset("paper").trainers) == every
    env = {**os.environ, "SPECBENCH_PLUGINS": str(plugin)}
    make = subprocess.run(["make", "-n", "reference-tuning", f"SB={sys.executable} -m specbench"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert make.returncode == 0, make.stderr
    assert f" tune --preset paper --trainers {every} " in make.stdout, make.stdout
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                "tests/test_trainers.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    for test in ("test_each_trainer_lowers_its_own_loss_on_oscillator", "test_blow_up_is_reported_as_diverged"):
        assert f"tests/test_trainers.py::{test}[newcomer]" in collected.stdout.splitlines()
