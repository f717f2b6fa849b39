from dataclasses import replace

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import specbench.systems.datasets as data_module
from specbench.registries import equation_systems, get_system
from specbench.systems.datasets import dataset_key, generate, make_dataset, save
from tests.helpers import run_cli


@pytest.mark.parametrize("name", equation_systems())
def test_cli_data_matches_an_independent_dop853_solution(name, tmp_path):
    """`specbench data` output agrees with DOP853 from each trajectory's first clean state to 1e-6 relative."""
    out = tmp_path / "d.npz"
    proc = run_cli("data", name, "--out", out)
    assert proc.returncode == 0, proc.stderr
    s = get_system(name)
    with np.load(out) as f:
        t, clean, t_test, test = f["t"], f["train_clean"], f["t_test"], f["test"]
        assert f["train"].shape == clean.shape and clean.ndim == 3 and clean.shape[2] == s.dim
        for k, v in s.params.items():
            np.testing.assert_array_equal(f[f"param_{k}"], v)
    for times, trajs in ((t, clean), (t_test, test)):
        for x in trajs:
            sol = solve_ivp(s.rhs_numpy, (times[0], times[-1]), x[0], method="DOP853", t_eval=times,
                            rtol=1e-12, atol=1e-12)
            ref = sol.y.T
            assert np.abs(x - ref).max() <= 1e-6 * np.abs(ref).max()


def test_same_seed_same_bits_other_seed_other_data():
    s = get_system("lorenz")
    a, b, c = generate(s, seed=3), generate(s, seed=3), generate(s, seed=4)
    for name in ("t", "train_clean", "train", "t_test", "test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.train, c.train)


def test_train_and_test_start_from_different_states():
    d = generate(get_system("oscillator"), seed=0)
    starts = {tuple(x) for x in d.train[:, 0]}
    assert not any(tuple(x) in starts for x in d.test[:, 0])


@pytest.mark.parametrize("regime", ["dense", "sparse"])
def test_regime_shapes(regime):
    s = get_system("lotka-volterra")
    spec = s.regimes[regime]
    d = generate(s, regime)
    assert d.train.shape == (spec.n_train, spec.n_times, 2)
    assert d.test.shape[0] == spec.n_test and d.t_test[-1] == pytest.approx(s.test_horizon)
    assert d.t[-1] == pytest.approx(s.t_span)


def test_noise_is_relative_to_each_states_spread():
    d = generate(get_system("lorenz"), noise=0.05, seed=0)
    resid = (d.train - d.train_clean).reshape(-1, 3).std(0)
    np.testing.assert_allclose(resid / d.train_clean.reshape(-1, 3).std(0), 0.05, rtol=0.1)
    assert np.array_equal(generate(get_system("lorenz"), noise=0.0).train, d.train_clean)


def cached_path(tmp_path, system, regime="dense", noise=0.0, seed=0):
    [path] = tmp_path.glob(f"{system.name}-{dataset_key(system, regime, noise, seed)}.npz")
    return path


def forbid_generation(monkeypatch):
    """From here on, making a dataset from the equations is an error: what comes back was read from the cache."""
    def refuse(*args, **kwargs):
        raise AssertionError("the dataset was generated again instead of read from the cache")

    monkeypatch.setattr(data_module, "generate", refuse)


def count_generation(monkeypatch) -> list:
    calls = []
    original = data_module.generate

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(data_module, "generate", counting)
    return calls


def test_cache_is_read_back_not_regenerated(tmp_path, monkeypatch):
    """The second call reads the file the first wrote (generation is forbidden then), under the dataset's key; a
    planted file with that key and marked arrays is what comes back, so the cache is what is read."""
    s = get_system("oscillator")
    first = make_dataset(s, "sparse", 0.01, 5, cache_dir=tmp_path)
    path = cached_path(tmp_path, s, "sparse", 0.01, 5)
    forbid_generation(monkeypatch)
    again = make_dataset(s, "sparse", 0.01, 5, cache_dir=tmp_path)
    for name in ("t", "train_clean", "train", "t_test", "test"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    marked = replace(first, train=first.train + 123.0)
    save(marked, path)
    assert np.array_equal(make_dataset(s, "sparse", 0.01, 5, cache_dir=tmp_path).train, first.train + 123.0)


def test_each_key_has_its_own_file(tmp_path, monkeypatch):
    s = get_system("oscillator")
    calls = count_generation(monkeypatch)
    a = make_dataset(s, "sparse", 0.01, 5, cache_dir=tmp_path)
    b = make_dataset(s, "sparse", 0.02, 5, cache_dir=tmp_path)  # another noise level is another file
    assert len(calls) == 2 and len(list(tmp_path.glob("*.npz"))) == 2 and not np.array_equal(a.train, b.train)
    assert np.array_equal(make_dataset(s, "sparse", 0.01, 5, cache_dir=tmp_path).train, a.train) and len(calls) == 2


def damage(path, how: str, good):
    """Make the cache file at `path` (which holds `good`) unfit to trust, in one way."""
    if how == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif how == "garbage":
        path.write_bytes(b"not an npz at all")
    elif how == "wrong-arrays":
        np.savez(path, key="other", t=np.zeros(3))
    elif how == "missing-array":  # the right key, one array short
        np.savez(path, key=good.key, **{k: getattr(good, k) for k in ("t", "train_clean", "train", "t_test")})
    elif how == "another-key":  # a whole, valid dataset, but another seed's
        save(generate(good.system, good.regime, good.noise, good.seed + 1), path)
    elif how == "wrong-shape":  # the right key, a trajectory short
        save(replace(good, train=good.train[1:], train_clean=good.train_clean[1:]), path)
    elif how == "non-finite":
        save(replace(good, train=np.where(np.arange(good.train.size).reshape(good.train.shape) == 7, np.nan,
                                          good.train)), path)
    else:
        raise ValueError(how)


@pytest.mark.parametrize("how", ["truncate", "garbage", "wrong-arrays", "missing-array", "another-key", "wrong-shape",
                                 "non-finite"])
def test_bad_cache_file_is_regenerated_not_trusted(tmp_path, monkeypatch, how):
    """A cache file that cannot be read, or does not hold this key's arrays, is generated again (exactly once) and
    rewritten; what comes back is the dataset itself, and the next call reads the rewritten file."""
    s = get_system("oscillator")
    good = make_dataset(s, cache_dir=tmp_path)
    path = cached_path(tmp_path, s)
    damage(path, how, good)
    calls = count_generation(monkeypatch)
    again = make_dataset(s, cache_dir=tmp_path)
    assert len(calls) == 1
    for name in ("t", "train_clean", "train", "t_test", "test"):
        assert np.array_equal(getattr(again, name), getattr(good, name))
    forbid_generation(monkeypatch)
    assert np.array_equal(make_dataset(s, cache_dir=tmp_path).train, good.train)  # rewritten, readable


def test_an_equation_dataset_is_regular_fully_observed_and_input_free():
    d = generate(get_system("lotka-volterra"), "sparse", seed=0)
    assert d.regular and d.fully_observed and d.input_free and d.needs == frozenset()
    runs = d.trajectories("train")
    assert len(runs) == d.train.shape[0] and all(r.u is None for r in runs)
    np.testing.assert_array_equal(np.stack([r.y for r in runs]), d.train)
    np.testing.assert_array_equal(d.trajectories("test")[0].t, d.t_test)


def test_measurements_hold_irregular_times_hidden_states_and_inputs():
    s = get_system("oscillator")
    runs = [data_module.Trajectory(np.array([0.0, 0.3, 1.1]), np.ones((3, 1)), np.array([0.0, 2.0]), np.ones((2, 1))),
            data_module.Trajectory(np.array([0.0, 0.5]), np.ones((2, 1)), np.array([0.0, 2.0]), np.ones((2, 1)))]
    d = data_module.measured(s, runs, runs[:1], outputs=[1], hold="linear")
    assert not d.regular and d.t is None and d.train is None
    assert d.needs == frozenset({"inputs", "hidden", "irregular"})
    assert [len(r.t) for r in d.trajectories("train")] == [3, 2]
    same = data_module.measured(s, runs[:1], runs[:1], outputs=[0, 1])
    assert same.regular and same.fully_observed and same.train.shape == (1, 3, 1) and same.needs == {"inputs"}


def test_an_input_is_held_by_its_declared_hold_and_never_extrapolated():
    t_u, u = np.array([0.0, 1.0, 3.0]), np.array([[0.0], [2.0], [6.0]])
    t = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(data_module.hold_input(t_u, u, t, "zoh")[:, 0], [0, 0, 2, 2, 6])
    np.testing.assert_allclose(data_module.hold_input(t_u, u, t, "linear")[:, 0], [0, 1, 2, 4, 6])
    with pytest.raises(ValueError):
        data_module.hold_input(t_u, u, np.array([3.5]), "zoh")
    with pytest.raises(ValueError):
        data_module.hold_input(t_u, u, t, "cubic")


def test_data_says_what_it_wrote_for_any_dataset_and_refuses_an_npz_that_cannot_hold_it(tmp_path):
    """The NPZ holds full states on one grid per split with no input: irregular times, a measured system's input
    and hidden state are refused there in one line (exit 2, nothing written), and written as the CSV. An unknown
    regime of a measured system is refused, not replaced by its one regime."""
    from tests.helpers import one_line_exit_2

    proc = run_cli("data", "oscillator", "--regime", "irregular", "--out", tmp_path / "irr.csv")
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "train 16 trajectories of 101 samples" in proc.stdout
    one_line_exit_2(run_cli("data", "oscillator", "--regime", "irregular", "--out", tmp_path / "irr.npz"),
                    "has irregular, which an NPZ file cannot hold: write it as --out FILE.csv")
    one_line_exit_2(run_cli("data", "cascaded-tanks", "--out", tmp_path / "tanks.npz"),
                    "has hidden, inputs, which an NPZ file cannot hold")
    one_line_exit_2(run_cli("data", "cascaded-tanks", "--regime", "sparse", "--out", tmp_path / "s.csv"),
                    "unknown regime 'sparse'; valid regimes: dense")
    assert not list(tmp_path.glob("*.npz")) and not (tmp_path / "s.csv").exists()
    proc = run_cli("data", "cascaded-tanks", "--out", tmp_path / "tanks.csv")
    assert proc.returncode == 0 and "train 1 trajectory of 1024 samples, test 1 trajectory" in proc.stdout
