"""Performance profiles against numbers worked out by hand: median times over seeds, ratios to the fastest in each
cell, rho at chosen tau, the areas in closed form, the cells each trainer is fastest in and the cells left out."""
import math
import subprocess
import sys

import pytest

from specbench.claims.profiles import R_MAX, median_times, performance_ratios, profiles
from tests.helpers import make_record, seeds

LOG_R = math.log(R_MAX)


def four_cells():
    """Three trainers of three roles and a rival in one cell only; medians over seeds (never: +inf):
    oscillator dense:      spectral 2, backprop-rk4 4, vf-node 2 (a tie), multiple-shooting 8
    lorenz dense:          spectral never (5 on one seed of three), backprop-rk4 10, vf-node never
    lotka-volterra sparse: spectral 1, backprop-rk4 200 (beyond R_MAX x), vf-node 4 ((3 + 5) / 2 of 4 seeds)
    cubic-oscillator dense: nobody reaches the target: left out."""
    cell = {"oscillator": {}, "lorenz": {}, "lotka-volterra": {"regime": "sparse"}, "cubic-oscillator": {}}
    times = {"oscillator": {"spectral": (1.0, 2.0, 3.0), "backprop-rk4": (4.0, 4.0, 4.0),
                            "vf-node": (2.0, 2.0, None), "multiple-shooting": (8.0, 8.0, 8.0)},
             "lorenz": {"spectral": (None, None, 5.0), "backprop-rk4": (10.0, 10.0, 10.0),
                        "vf-node": (None, None, None)},
             "lotka-volterra": {"spectral": (1.0, 1.0, 1.0), "backprop-rk4": (200.0, 200.0, 200.0),
                                "vf-node": (3.0, 5.0, 1.0, None)},
             "cubic-oscillator": {"spectral": (None, None, None), "backprop-rk4": (None, None, None)}}
    rivals = ("vf-node", "multiple-shooting")
    return [r for system, per in times.items() for trainer, ts in per.items()
            for r in seeds(trainer, ts, role="rival" if trainer in rivals else None, system=system, **cell[system])]


def by_trainer(prof):
    return {p.trainer: p for p in prof.profiles}


def test_median_times_count_a_run_that_never_reached_as_never():
    times = median_times(four_cells())
    assert times[("oscillator", "dense")] == {"spectral": 2.0, "backprop-rk4": 4.0, "vf-node": 2.0,
                                              "multiple-shooting": 8.0}
    assert times[("lorenz", "dense")]["spectral"] == math.inf  # reached on one seed of three
    assert times[("lotka-volterra", "sparse")]["vf-node"] == 4.0  # 1, 3, 5, never: (3 + 5) / 2
    assert times[("lorenz", "dense")]["multiple-shooting"] == math.inf  # no runs there: never


def test_ratios_are_to_the_fastest_of_the_cell_and_an_unsolved_cell_has_none():
    assert performance_ratios({"a": 2.0, "b": 5.0, "c": math.inf}) == {"a": 1.0, "b": 2.5, "c": math.inf}
    assert performance_ratios({"a": math.inf, "b": math.inf}) is None
    assert performance_ratios({"a": 0.0, "b": 0.0, "c": 1.0}) == {"a": 1.0, "b": 1.0, "c": math.inf}


def test_profiles_of_known_times():
    prof = profiles(four_cells())
    assert prof.cells == (("lorenz", "dense"), ("lotka-volterra", "sparse"), ("oscillator", "dense"))
    assert prof.left_out == (("cubic-oscillator", "dense"),)
    assert [p.trainer for p in prof.profiles] == ["spectral", "backprop-rk4", "vf-node", "multiple-shooting"]
    assert [p.role for p in prof.profiles] == ["candidate", "baseline", "rival", "rival"]
    p = by_trainer(prof)
    assert p["spectral"].ratios == (math.inf, 1.0, 1.0)
    assert p["backprop-rk4"].ratios == (1.0, 200.0, 2.0)
    assert p["vf-node"].ratios == (math.inf, 4.0, 1.0)
    assert p["multiple-shooting"].ratios == (math.inf, math.inf, 4.0)

    # rho(tau): the fraction of the three cells within tau x the fastest
    assert [p["spectral"].rho(t) for t in (1.0, R_MAX)] == [2 / 3, 2 / 3]
    assert [p["backprop-rk4"].rho(t) for t in (1.0, 1.99, 2.0, R_MAX)] == [1 / 3, 1 / 3, 2 / 3, 2 / 3]
    assert [p["vf-node"].rho(t) for t in (1.0, 3.99, 4.0)] == [1 / 3, 1 / 3, 2 / 3]
    assert [p["multiple-shooting"].rho(t) for t in (1.0, 4.0)] == [0.0, 1 / 3]

    # area over log tau in [0, log R_MAX], over log R_MAX: each cell gives 1 - log r / log R_MAX (0 beyond R_MAX)
    assert p["spectral"].area == pytest.approx(2 / 3)
    assert p["backprop-rk4"].area == pytest.approx((1 + 0 + 1 - math.log(2) / LOG_R) / 3)
    assert p["vf-node"].area == pytest.approx((1 - math.log(4) / LOG_R + 1) / 3)
    assert p["multiple-shooting"].area == pytest.approx((1 - math.log(4) / LOG_R) / 3)

    # fastest: a tie counts for each; solved: reached in the median, however slowly
    assert {t: (x.best, x.solved) for t, x in p.items()} == {"spectral": (2, 2), "backprop-rk4": (1, 3),
                                                             "vf-node": (1, 2), "multiple-shooting": (0, 1)}


def test_the_area_is_the_integral_of_the_step_function():
    """The closed form against a fine trapezoid rule over log tau."""
    n = 20_000
    for p in profiles(four_cells()).profiles:
        logs = [LOG_R * i / n for i in range(n + 1)]
        values = [p.rho(math.exp(u)) for u in logs]
        integral = sum((a + b) / 2 for a, b in zip(values, values[1:])) * LOG_R / n
        assert integral / LOG_R == pytest.approx(p.area, abs=1e-3)


def test_a_failed_run_counts_as_never():
    records = seeds("spectral", (1.0, 1.0, 1.0)) + seeds("backprop-rk4", (2.0, 2.0, 2.0)) + \
        [make_record(trainer="adjoint-dopri5", seed=s, ttt=None, status="diverged") for s in range(3)]
    p = by_trainer(profiles(records))
    assert p["adjoint-dopri5"].ratios == (math.inf,) and p["adjoint-dopri5"].area == 0.0
    assert p["backprop-rk4"].ratios == (2.0,)


def test_a_profile_is_shown_with_two_trainers_and_a_solved_cell():
    assert profiles(four_cells()).shown
    assert not profiles(seeds("spectral", (1.0, 2.0))).shown  # one trainer ranks nothing
    unsolved = profiles(seeds("spectral", (None, None)) + seeds("backprop-rk4", (None, None)))
    assert not unsolved.shown and unsolved.left_out == (("oscillator", "dense"),) and not unsolved.profiles


def test_the_report_and_the_profiles_do_not_import_torch():
    code = "import sys, specbench.claims.profiles, specbench.report.document; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
