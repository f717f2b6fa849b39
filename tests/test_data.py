import numpy as np
import pytest
from scipy.integrate import solve_ivp

from specbench.data import dataset_key, generate, make_dataset
from specbench.systems import SYSTEMS, get_system
from tests.conftest import run_cli


@pytest.mark.parametrize("name", SYSTEMS)
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


def test_cache_round_trip_and_key(tmp_path):
    s = get_system("oscillator")
    first = make_dataset(s, "sparse", 0.01, 5, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and dataset_key(s, "sparse", 0.01, 5) in files[0].name
    again = make_dataset(s, "sparse", 0.01, 5, cache_dir=tmp_path)
    assert np.array_equal(first.train, again.train) and np.array_equal(first.test, again.test)
    make_dataset(s, "sparse", 0.02, 5, cache_dir=tmp_path)  # another noise level is another file
    assert len(list(tmp_path.glob("*.npz"))) == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong-arrays"])
def test_corrupt_cache_file_is_regenerated(tmp_path, damage):
    s = get_system("oscillator")
    good = make_dataset(s, cache_dir=tmp_path)
    path = next(tmp_path.glob("*.npz"))
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"not an npz at all")
    else:
        np.savez(path, key="other", t=np.zeros(3))
    again = make_dataset(s, cache_dir=tmp_path)
    assert np.array_equal(good.train, again.train)
    assert make_dataset(s, cache_dir=tmp_path).train.shape == good.train.shape  # rewritten, readable
