"""Scaling studies: their plans, their records, the verdicts they decide and their place in the report."""
import functools
from dataclasses import replace

import pytest

from specbench.claims.study_verdicts import decay, study_verdicts
from specbench.core.records import Study, problems_of
from specbench.registries import SYSTEMS
from specbench.report.document import write_report
from specbench.running.protocol import run_job
from specbench.running.studies import STUDIES, Size
from tests.helpers import make_record, one_line_exit_2, run_cli, save

SMALL = Size(full=False, seeds=None, device="cpu", threads=1)


@functools.cache
def plan(name: str, full: bool = False) -> tuple:
    """The study's jobs at the small (or full) size, planned once per process: planning reads the tuned settings
    once per job, seconds a study."""
    return tuple(STUDIES[name].plan(replace(SMALL, full=full)))


@pytest.mark.parametrize("name", STUDIES)
def test_every_study_plans_distinct_named_jobs(name):
    jobs = plan(name)
    assert jobs and len({j.name for j in jobs}) == len(jobs)
    assert all(j.study.name == name and isinstance(j.study, Study) for j in jobs)
    full = plan(name, full=True)
    assert len(full) > len(jobs)


# Each study's own budget_s at its default and --full sizes: the values behind the committed studies.
OWN_BUDGET_S = {"horizon": (3.0, 10.0), "state-size": (8.0, 20.0), "order": (6.0, 20.0), "regimes": (6.0, 20.0)}


@pytest.mark.parametrize("name", STUDIES)
def test_a_study_runs_on_its_own_budget_unless_budget_is_given(name):
    assert {j.budget_s for j in plan(name)} == {OWN_BUDGET_S[name][0]}
    assert {j.budget_s for j in plan(name, full=True)} == {OWN_BUDGET_S[name][1]}
    given = STUDIES[name].plan(replace(SMALL, budget_s=2.0))
    assert len(given) == len(plan(name)) and {j.budget_s for j in given} == {2.0}
    if name == "horizon":  # its runs evaluate the metric at the start and at the end of the budget alone
        assert {(j.cadence["first"], j.cadence["max_interval"]) for j in given} == {(2.0, 2.0)}


def test_horizon_grows_ten_fold_at_the_same_sampling_interval():
    jobs = plan("horizon")
    sizes = sorted({j.data["n_times"] for j in jobs})
    assert sizes[-1] >= 10 * sizes[0]
    dts = {round(j.data["t_span"] / (j.data["n_times"] - 1), 12) for j in jobs}
    assert len(dts) == 1
    whole = [j for j in jobs if "whole" in j.study.series]
    assert whole and all(j.config["segment_length"] == j.data["n_times"] for j in whole)


def test_order_study_keeps_the_fit_determined_by_the_data():
    for job in plan("order", full=True):
        n_obs = SYSTEMS[job.system]().regimes["dense"].n_times
        assert job.config["E"] * job.config["p"] + 1 <= n_obs and job.measure == ["representation_error"]


def test_a_study_job_records_its_study_and_measurements():
    job = next(j for j in plan("order") if j.study.variable == "p" and j.study.value == 8)
    record = run_job(replace(job, budget_s=0.3))
    assert problems_of(record.to_dict()) == []
    assert record.study == job.study and record.config["p"] == 8 and record.config["E"] == 4
    assert 0 < record.representation_error < 1e-5
    assert record.nfe_per_iteration == 1.0  # the coefficient step reuses the theta step's forward pass (Jacobi)
    horizon = next(j for j in plan("horizon")
                   if j.trainer == "backprop-rk4" and "whole" in j.study.series and j.data["n_times"] == 201)
    record = run_job(replace(horizon, budget_s=0.3))
    assert record.config["data"]["n_times"] == 201 and record.config["data"]["t_span"] == pytest.approx(10.0)
    steps = record.config["steps_per_obs"]  # tuned: the reference's lotka-volterra/dense rk4 takes 2
    assert record.nfe_per_iteration == 4 * steps * 200  # rk4: four stages per step, `steps` per observation interval
    assert record.step_seconds > 0 and record.setup_memory_bytes is not None


def study_record(name, variable, value, series, trainer="spectral", regime="dense", test_mse=1e-3, **fields):
    r = make_record(trainer=trainer, system="lotka-volterra", regime=regime, test_mse=test_mse)
    return replace(r, study=Study(name, variable, value, series), **fields)


def horizon_records(adjoint_memory):
    """Spectral's memory grows as n, rk4's (whole) as n, the adjoint's (whole) as `adjoint_memory(n)`."""
    out = []
    for n in (100, 1000):
        out.append(study_record("horizon", "n_times", n, "spectral", peak_memory_bytes=1000 * n,
                                nfe_per_iteration=2.0, step_seconds=1e-5 * n))
        for trainer, memory in (("backprop-rk4", 5000 * n), ("adjoint-dopri5", adjoint_memory(n))):
            for series in (trainer, trainer + " (whole trajectories)"):
                out.append(study_record("horizon", "n_times", n, series, trainer=trainer, nfe_per_iteration=4.0 * n,
                                        peak_memory_bytes=memory if "whole" in series else 10_000,
                                        step_seconds=1e-4 * n))
    return out


def by_claim(verdicts, claim, regime_part=""):
    return [v for v in verdicts if v.claim == claim and regime_part in v.regime]


def test_horizon_verdicts_judge_memory_and_sequential_depth():
    verdicts = study_verdicts(horizon_records(lambda n: 5000 * n))
    [whole] = by_claim(verdicts, "C3", "whole")
    assert whole.verdict == "holds" and whole.ratios["backprop-rk4"].value == pytest.approx(5.0)
    assert "spectral 1.00" in whole.why  # the fitted exponent of spectral's memory, printed
    [segments] = by_claim(verdicts, "C3", "segments")
    assert segments.verdict == "fails"  # 10 kB segments against spectral's 1 MB
    [c4] = by_claim(verdicts, "C4")
    assert c4.verdict == "holds" and c4.ratios["backprop-rk4"].value == pytest.approx(2000.0)
    flat_adjoint = study_verdicts(horizon_records(lambda n: 200_000))
    [whole] = by_claim(flat_adjoint, "C3", "whole")
    assert whole.verdict == "fails" and "adjoint-dopri5" in whole.why


def test_order_verdict_separates_exponential_from_algebraic_decay():
    exp = [study_record("order", "p", p, "oscillator, E=4, noise 0", representation_error=10.0 ** -p)
           for p in range(1, 9)]
    [v] = by_claim(study_verdicts(exp), "C5")
    assert v.verdict == "holds" and "exponential" in v.why
    power = [study_record("order", "p", p, "oscillator, E=4, noise 0", representation_error=float(p) ** -6)
             for p in (1, 2, 4, 8, 16, 32)]
    [v] = by_claim(study_verdicts(power), "C5")
    assert v.verdict == "fails"
    assert decay([(p, 10.0 ** -p) for p in range(1, 9)])["rate"] == pytest.approx(1.0)


def test_order_decay_stops_at_the_floor():
    pts = [(1, 1e-1), (2, 1e-3), (3, 1e-5), (4, 1e-7), (5, 3e-7), (6, 2e-7)]
    d = decay(pts)
    assert d["floor_at"] == 4 and d["fall"] == pytest.approx(1e6)


def test_report_draws_studies_given_with_studies(tmp_path):
    save(tmp_path / "head" / "runs" / "a.json", make_record())
    for i, r in enumerate(horizon_records(lambda n: 5000 * n)):
        save(tmp_path / "studies" / "horizon" / "runs" / f"{i}.json", r)
    md, page = write_report(tmp_path / "head", tmp_path / "out", studies=[tmp_path / "studies"])
    text = md.read_text()
    assert "## Horizon study (lotka-volterra)" in text
    assert "| C4 | lotka-volterra | horizon study | ✓ **holds** |" in text
    assert (tmp_path / "out" / "figures" / "study-horizon.png").stat().st_size > 1000
    assert "study-horizon.png" not in page.read_text() and page.read_text().count("data:image/png") >= 2


def test_bad_study_input_is_exit_2(tmp_path):
    one_line_exit_2(run_cli("study", "nosuch"), "valid studies: horizon, state-size, order, regimes")
    save(tmp_path / "runs" / "a.json", make_record())
    (tmp_path / "empty").mkdir()
    one_line_exit_2(run_cli("report", tmp_path, "--studies", tmp_path / "empty"), "no study records")


def test_state_size_and_regimes_verdicts():
    recs = [study_record("state-size", "N", n, t, trainer=t, peak_memory_bytes=m * n, setup_memory_bytes=0)
            for n in (4, 64) for t, m in (("spectral", 1000), ("backprop-rk4", 3000), ("backprop-dopri5", 3000),
                                           ("adjoint-dopri5", 500))]
    [v] = by_claim(study_verdicts(recs), "C3", "state-size")
    assert v.regime == "state-size study, N = 64" and v.verdict == "fails" and "adjoint-dopri5" in v.why
    assert v.ratios["backprop-rk4"].value == pytest.approx(3.0)
    cells = [study_record("regimes", "noise", noise, regime, trainer=t, regime=regime,
                          test_mse=1e-4 if t == "spectral" else 1e-2)
             for regime in ("dense", "sparse") for noise in (0.0, 0.05)
             for t in ("spectral", "backprop-rk4", "backprop-dopri5", "adjoint-dopri5")]
    c2 = by_claim(study_verdicts(cells), "C2", "regimes study")
    assert {v.regime for v in c2} == {"regimes study, dense, noise 0", "regimes study, dense, noise 0.05",
                                      "regimes study, sparse, noise 0", "regimes study, sparse, noise 0.05"}
    assert all(v.verdict == "holds" for v in c2)
