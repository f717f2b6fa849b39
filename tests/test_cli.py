import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("args, needle", [
    (["run", "--systems", "nosuch"], "valid systems: oscillator, cubic-oscillator, lotka-volterra, lorenz, network"),
    (["run", "--trainers", "sgd"], "valid trainers: spectral, spectral-2stage"),
    (["run", "--budget", "-5"], "--budget must be positive"),
    (["run", "--budget", "abc"], "--budget must be a positive number"),
    (["run", "--seeds", "0"], "--seeds must be positive"),
    (["run", "--preset", "nosuch"], "valid presets: paper, quick"),
    (["data", "nosuch", "--out", "x.npz"], "valid systems"),
    (["nosuch"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle):
    proc = run_cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_list_names_everything():
    proc = run_cli("list")
    assert proc.returncode == 0
    for name in ("oscillator", "cubic-oscillator", "lotka-volterra", "lorenz", "network", "spectral",
                 "spectral-2stage", "backprop-rk4", "backprop-dopri5", "adjoint-dopri5", "quick", "horizon",
                 "state-size", "order", "regimes"):
        assert name in proc.stdout


def test_unwritable_data_out_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_cli("data", "oscillator", "--out", blocker / "sub" / "d.npz")
    assert proc.returncode == 2 and "cannot write" in proc.stderr and "Traceback" not in proc.stderr


def test_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        import pytest

        pytest.skip("this machine has CUDA")
    for args in (["run", "--systems", "oscillator"], ["study", "order"]):
        proc = run_cli(*args, "--device", "cuda", "--out", tmp_path)
        assert proc.returncode == 2 and "no CUDA device" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
