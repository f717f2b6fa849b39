"""The user's own measurement file (docs/data-format.md): read, written, checked at the door, run from the command
line without Python."""
import json

import numpy as np
import pytest
import torch

from specbench.core.errors import UsageError
from specbench.registries import TRAINERS, get_system
from specbench.running.protocol import Job, run_job
from specbench.systems.datasets import as_measurements, generate, make_dataset
from specbench.systems.measurements import read, write_csv
from tests.helpers import run_cli

HEADER = "trajectory,time,y_level,u_pump,split\n"
GOOD = HEADER + "a,0,1.0,0.5,train\na,1,1.5,0.5,train\na,2.5,1.7,,train\na,3,1.8,0.2,train\n" \
                "b,0,1.1,0.1,test\nb,0.5,1.2,0.3,test\n"


def test_a_dataset_written_as_csv_reads_back_exactly(tmp_path):
    data = generate(get_system("lotka-volterra"), "sparse", seed=1)
    write_csv(as_measurements(data), tmp_path / "d.csv")
    back = make_dataset(get_system("file", path=str(tmp_path / "d.csv")))
    assert back.regular and back.fully_observed and back.input_free
    for name in ("t", "train", "t_test", "test"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name))


def test_irregular_driven_measurements_read_as_written(tmp_path):
    (tmp_path / "m.csv").write_text("# hold = linear\n# hidden = 1\n" + GOOD)
    m = read(tmp_path / "m.csv")
    assert m.hold == "linear" and m.hidden == 1 and m.outputs == ("level",) and m.inputs == ("pump",)
    a = m.train[0]
    np.testing.assert_array_equal(a.t, [0, 1, 2.5, 3])
    np.testing.assert_array_equal(a.t_u, [0, 1, 3])  # the row without an input is an output sample only
    data = make_dataset(get_system("file", path=str(tmp_path / "m.csv")))
    assert data.system.dim == 2 and data.needs == {"inputs", "hidden"}
    write_csv(m, tmp_path / "again.csv")
    again = read(tmp_path / "again.csv")
    np.testing.assert_array_equal(again.train[0].u, a.u)


BAD = {
    "missing column": ("trajectory,time,y_level,u_pump\na,0,1,1\n", "missing column split"),
    "extra column": (HEADER.replace("split", "speed,split") + "a,0,1,1,9,train\n", "extra column 'speed'"),
    "nan": (GOOD.replace("1.5", "nan"), "must be finite"),
    "inf": (GOOD.replace("1.5", "inf"), "must be finite"),
    "not increasing": (GOOD.replace("a,2.5", "a,0.5"), "times are not increasing"),
    "one sample": (GOOD + "c,0,1,1,test\n", "a trajectory needs at least two"),
    "input missing": (GOOD.replace("a,0,1.0,0.5", "a,0,1.0,"), "inputs missing where the zoh hold needs them"),
    "no test": (GOOD.replace("test", "train"), "no trajectory in the test split"),
    "non-numeric": (GOOD.replace("1.7", "high"), "'high' is not a number"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_file_is_one_line_and_exit_2_before_anything_is_written(case, tmp_path):
    text, says = BAD[case]
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(UsageError, match=says.replace("(", r"\(")):
        read(tmp_path / "bad.csv")
    out = tmp_path / "out"
    proc = run_cli("run", "--data", tmp_path / "bad.csv", "--trainers", "spectral", "--seeds", "1", "--budget", "1",
                   "--out", out)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and says in proc.stderr
    assert not out.exists()


def test_the_csv_specbench_data_writes_is_a_system_on_the_command_line(tmp_path):
    assert run_cli("data", "oscillator", "--regime", "sparse", "--out", tmp_path / "osc.csv").returncode == 0
    proc = run_cli("run", "--data", tmp_path / "osc.csv", "--trainers", "spectral", "--seeds", "1", "--budget",
                   "0.5", "--out", tmp_path / "ok", "--no-report")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "ok" / "runs" / "file__spectral__dense__seed0.json").read_text())
    assert record["status"] == "ok" and record["config"]["system_params"]["path"].endswith("osc.csv")


def test_run_data_trains_on_hidden_states_and_records_na_where_a_trainer_cannot_learn_from_the_file(tmp_path):
    """The hand-written file of three irregular trajectories (below) with a hidden state, on the command line:
    spectral trains on it, and it is "n/a" for a trainer that needs every state measured, with the reason, and the
    report shows it. Every other trainer's run on it is the test below."""
    three_trajectories(tmp_path / "three.csv", hidden=1)
    proc = run_cli("run", "--data", tmp_path / "three.csv", "--trainers", "spectral,vf-node", "--seeds", "1",
                   "--budget", "0.5", "--threads", "1", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    runs = tmp_path / "out" / "runs"
    record = json.loads((runs / "file__spectral__dense__seed0.json").read_text())
    assert record["status"] == "ok" and record["iterations"] > 0 and np.isfinite(record["test_rmse"])
    assert record["config"]["data"]["n_train"] == 2
    record = json.loads((runs / "file__vf-node__dense__seed0.json").read_text())
    assert record["status"] == "n/a" and "cannot learn from hidden states or inputs" in record["error"]
    assert "1 ok, 0 not ok, 1 n/a" in proc.stderr
    assert "| n/a | VFNode cannot learn from hidden states or inputs" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize("other", [["--systems", "oscillator"], ["--regimes", "sparse"]])
def test_data_is_the_one_system_in_its_one_regime(other, tmp_path):
    (tmp_path / "m.csv").write_text(GOOD)
    proc = run_cli("run", "--data", tmp_path / "m.csv", *other, "--out", tmp_path / "out")
    assert proc.returncode == 2 and "leave out --systems and --regimes" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_the_npz_specbench_data_writes_reads_as_its_arrays_and_a_partial_one_is_one_line(tmp_path):
    from specbench.systems.datasets import save

    data = generate(get_system("oscillator"), "sparse", seed=2)
    save(data, tmp_path / "d.npz")
    back = make_dataset(get_system("file", path=str(tmp_path / "d.npz")))
    for name in ("t", "train", "t_test", "test"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name))
    np.savez(tmp_path / "partial.npz", t=data.t, train=data.train)
    with pytest.raises(UsageError, match="missing array t_test"):
        read(tmp_path / "partial.npz")
    for bad, shape in ((dict(t=data.t[:-1]), r"train has shape \(4, \d+, 2\) and t \(\d+,\)"),
                       (dict(test=data.test[0]), r"test has shape \(\d+, 2\)"),
                       (dict(test=data.test[..., :1]), "one state count")):
        np.savez(tmp_path / "bad.npz", **{"t": data.t, "train": data.train, "t_test": data.t_test, "test": data.test,
                                          **bad})
        with pytest.raises(UsageError, match=shape):
            read(tmp_path / "bad.npz")


def three_trajectories(path, hidden: int) -> None:
    """A hand-written file: three trajectories of 17, 23 and 31 irregular times (the second in the test split), one
    input (zoh), one output, and `hidden` hidden states."""
    rng = np.random.default_rng(3)
    lines = ["# hold = zoh", f"# hidden = {hidden}", "trajectory,time,y_x,u_f,split"]
    for name, n, split in (("a", 17, "train"), ("b", 23, "test"), ("c", 31, "train")):
        t = np.round(np.sort(np.concatenate([[0.0, 3.0], rng.uniform(0.01, 2.99, n - 2)])), 4)
        for k, tk in enumerate(t):
            lines.append(f"{name},{tk},{np.sin(2 * tk) + 0.1 * k / n:.5f},{np.sign(np.sin(3 * tk)):.0f},{split}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def threads_put_back():
    """A run sets torch's threads (its job's, one here): the tests after it keep theirs."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(TRAINERS))
@pytest.mark.parametrize("hidden", [0, 1])
def test_three_irregular_driven_trajectories_train_with_every_capable_trainer_and_the_others_are_na(hidden, name,
                                                                                                  tmp_path,
                                                                                                  threads_put_back):
    """Every trainer that declares what the file needs trains on it (0.5 s, the common metric at its start and
    end, the test errors of its best checkpoint); the others are recorded n/a with the reason. The run a worker
    makes, in this process (`protocol.run_job`); the command line's own path is the test above, with spectral and
    vf-node."""
    three_trajectories(tmp_path / "three.csv", hidden)
    record = run_job(Job(system="file", trainer=name, regime="dense", seed=0, budget_s=0.5, target=1e-2, config={},
                         system_params={"path": str(tmp_path / "three.csv")}, threads=1, fresh_process=False,
                         cadence={"first": 0.5, "max_interval": 0.5}))
    if {"inputs", "irregular", *(["hidden"] if hidden else [])} <= TRAINERS[name].learns_from:
        assert record.status == "ok" and record.iterations > 0, record.error
        assert np.isfinite(record.test_rmse) and record.config["data"]["n_train"] == 2
    else:
        assert record.status == "n/a" and "cannot learn from" in record.error
