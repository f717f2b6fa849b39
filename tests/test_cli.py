from pathlib import Path

import pytest

from specbench.registries import SYSTEMS, TRAINERS
from specbench.running import presets
from specbench.running.studies import STUDIES
from tests.helpers import one_line_exit_2, run_cli, run_cli_process


@pytest.mark.parametrize("args, needle", [
    (["run", "--systems", "nosuch"], "valid systems: oscillator, cubic-oscillator, lotka-volterra, lorenz, network"),
    (["run", "--trainers", "sgd"], "valid trainers: spectral, spectral-2stage"),
    (["run", "--budget", "-5"], "--budget must be positive"),
    (["run", "--budget", "abc"], "--budget must be a positive number"),
    (["run", "--seeds", "0"], "--seeds must be positive"),
    (["run", "--preset", "nosuch"], "valid presets: measured, paper, quick"),
    (["data", "nosuch", "--out", "x.npz"], "valid systems"),
    (["nosuch"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle):
    one_line_exit_2(run_cli(*args), needle, alone=True)


def listing(stdout: str) -> dict[str, list[list[str]]]:
    """`specbench list` as {section: [the words of each of its lines]}."""
    sections: dict[str, list[list[str]]] = {}
    for line in stdout.splitlines():
        if line.startswith(" "):
            sections[current].append(line.split())
        else:
            current = line.rstrip(":")
            sections[current] = []
    return sections


def test_list_names_everything():
    """Every registered system, trainer (with its role) and study, and every preset file beside the presets module
    (not the tuned-settings file), each once, in the registries' order; the expected names come from the registries
    and the files, so a new one cannot be missed."""
    proc = run_cli("list")
    assert proc.returncode == 0, proc.stderr
    got = listing(proc.stdout)
    assert list(got) == ["systems", "trainers", "presets", "studies"]
    assert [words[0] for words in got["systems"]] == list(SYSTEMS)
    assert [words[:2] for words in got["trainers"]] == [[name, cls.role] for name, cls in TRAINERS.items()]
    preset_files = sorted(f.stem for f in Path(presets.__file__).parent.glob("*.toml") if f != presets.TUNED)
    assert [words[0] for words in got["presets"]] == preset_files and "paper" in preset_files
    assert [words[0] for words in got["studies"]] == list(STUDIES)


def test_unwritable_data_out_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    # in a fresh process: a failure in the middle of a command ends the real `python -m specbench` without a traceback
    one_line_exit_2(run_cli_process("data", "oscillator", "--out", blocker / "sub" / "d.npz"), "cannot write")


def test_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        import pytest

        pytest.skip("this machine has CUDA")
    for args in (["run", "--systems", "oscillator"], ["study", "order"]):
        one_line_exit_2(run_cli(*args, "--device", "cuda", "--out", tmp_path), "no CUDA device")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_budget_replaces_the_presets_budget_s_and_says_so(tmp_path, monkeypatch):
    """run --budget gives every run that budget in place of the preset's budget_s table, and says what it replaces
    in one line."""
    from specbench.running import sweeps

    planned = []
    monkeypatch.setattr(sweeps, "run_sweep", lambda jobs, *args, **kw: planned.extend(jobs) or [])
    proc = run_cli("run", "--preset", "paper", "--systems", "oscillator,lorenz", "--trainers", "spectral",
                   "--seeds", "1", "--budget", "2", "--no-report", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ("specbench run: --budget 2 s for every run replaces preset paper's budget_s (10 to 45 s by system and "
            "regime)") in proc.stderr.splitlines()
    assert len(planned) == 4 and {job.budget_s for job in planned} == {2.0}


def test_run_says_which_preset_it_takes_when_none_is_named(tmp_path, monkeypatch):
    from specbench.running import sweeps

    monkeypatch.setattr(sweeps, "run_sweep", lambda jobs, *args, **kw: [])
    proc = run_cli("run", "--systems", "oscillator", "--trainers", "spectral", "--no-report", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "specbench run: preset quick (the default; --preset to choose)" in proc.stderr.splitlines()
    named = run_cli("run", "--preset", "quick", "--systems", "oscillator", "--trainers", "spectral", "--no-report",
                    "--out", tmp_path)
    assert named.returncode == 0 and "the default" not in named.stderr
