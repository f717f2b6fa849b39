import math
import re
from pathlib import Path

import pytest

from specbench.report.document import markdown_tables_only, render_html, render_markdown, write_report
from specbench.report.board import board, summary
from specbench.verdicts import MARK, claims, median, seed_ratios_by_cell, speedup, summarise, versus
from tests.records import replace, save
from tests.conftest import run_cli
from tests.records import make_record, seeds, sweep

BASES = ("backprop-rk4", "backprop-dopri5", "adjoint-dopri5")


def verdict(records, claim):
    [v] = [v for v in claims(records) if v.claim == claim]
    return v


def test_median_counts_unreached_as_infinite():
    assert median([1.0, None, 3.0]) == 3.0
    assert median([1.0, None, None]) == math.inf
    assert median([1.0, 2.0, 4.0, 8.0]) == 3.0


def test_speed_claim_holds_on_the_median_of_paired_ratios():
    v = verdict(sweep(), "C1")  # per seed: 20/1, 25/1.2, 30/0.8 -> 20, 20.8, 37.5
    assert v.verdict == "holds"
    r = v.ratios["backprop-rk4"]
    assert r.value == pytest.approx(25 / 1.2) and not r.lower and r.n == 3
    assert (r.low, r.high) == (pytest.approx(20.0), pytest.approx(37.5))
    assert str(r) == "20.8x (20 to 37.5, n=3)"


def test_paired_median_is_not_a_ratio_of_medians():
    # medians 2 and 20 would say 10x; the seeds say 100x, 1x and 20x: the paired median is 20x
    v = verdict(sweep(spec=(0.2, 20.0, 2.0), baselines={b: (20.0, 20.0, 40.0) for b in BASES}), "C1")
    assert v.ratios["backprop-rk4"].value == pytest.approx(20.0)


def test_speed_claim_fails_when_one_baseline_is_close():
    v = verdict(sweep(baselines={"backprop-rk4": (2.0, 3.0, 4.0), "backprop-dopri5": (30, 30, 30),
                                 "adjoint-dopri5": (30, 30, 30)}), "C1")
    assert v.verdict == "fails" and "backprop-rk4" in v.why
    assert v.ratios["backprop-rk4"].value == pytest.approx(2.5)  # 2/1, 3/1.2, 4/0.8


def test_unreached_baseline_gives_a_lower_bound():
    recs = sweep(baselines={b: (None, None, None) for b in BASES})
    v = verdict(recs, "C1")
    assert all(r.lower for r in v.ratios.values())
    assert v.ratios["adjoint-dopri5"].value == pytest.approx(10.0 / 1.0)  # its 10 s over spectral's 1 s
    assert str(v.ratios["adjoint-dopri5"]).startswith("> 10x")
    assert v.verdict == "holds"


def test_a_bound_above_the_median_leaves_it_measured():
    # seed 2's bound (10/0.1 = 100) sits above the measured median (25/1.2): the median is exact
    v = verdict(sweep(spec=(1.0, 1.2, 0.1), baselines={b: (20.0, 25.0, None) for b in BASES}), "C1")
    assert not v.ratios["backprop-rk4"].lower and v.ratios["backprop-rk4"].value == pytest.approx(25 / 1.2)
    v = verdict(sweep(baselines={b: (None, 25.0, 30.0) for b in BASES}), "C1")
    assert v.ratios["backprop-rk4"].lower  # seed 0's bound 10 is at or below the median


def test_short_lower_bound_is_inconclusive_and_names_the_budget_that_decides():
    recs = sweep(spec=(4.0, 4.0, 4.0), baselines={b: (None, None, None) for b in BASES})
    v = verdict(recs, "C1")
    assert v.verdict == "inconclusive" and "budget of 40 s" in v.why


def test_baseline_reaching_the_target_while_spectral_does_not_fails():
    v = verdict(sweep(spec=(None, None, 2.0)), "C1")
    assert v.verdict == "fails" and "spectral does not" in v.why


def test_neither_reaching_the_target_is_inconclusive():
    v = verdict(sweep(spec=(None, None, None), baselines={b: (None, None, None) for b in BASES}), "C1")
    assert v.verdict == "inconclusive" and "neither" in v.why


def test_a_transient_crossing_does_not_count():
    from specbench.measures import first_crossing, sustained

    curve = [[0.0, 0, 1.0], [0.05, 10, 5e-3], [1.0, 100, 0.2], [2.0, 200, 8e-3], [3.0, 300, 4e-3]]
    assert first_crossing(curve, 1e-2) == 0.05
    assert sustained(curve, 1e-2) == 2.0
    assert sustained(curve[:3], 1e-2) is None  # dipped, climbed back, ended above
    assert sustained([[0.0, 0, None]], 1e-2) is None


def test_no_spectral_runs_is_not_measured():
    recs = [r for r in sweep() if r.trainer != "spectral"]
    assert {v.verdict for v in claims(recs)} == {"not measured"}


def test_diverged_baseline_counts_as_unreached():
    recs = sweep()
    recs = [make_record(trainer=r.trainer, seed=r.seed, ttt=None, status="diverged")
            if r.trainer == "adjoint-dopri5" else r for r in recs]
    r = speedup([x for x in recs if x.trainer == "spectral"], [x for x in recs if x.trainer == "adjoint-dopri5"])
    assert r.lower and r.value == pytest.approx(10.0)


def test_mse_and_memory_claims():
    v2 = verdict(sweep(base_mse=1e-1), "C2")  # spectral 1e-3 against 1e-1 on every seed: 100x
    assert v2.verdict == "holds" and v2.ratios["backprop-dopri5"].value == pytest.approx(100.0)
    assert verdict(sweep(base_mse=2e-3), "C2").verdict == "fails"
    assert verdict(sweep(), "C3").verdict == "holds"  # 1 MB against 2 MB
    assert verdict(sweep(memory=5_000_000), "C3").verdict == "fails"


def test_scaling_claims_are_inconclusive_without_studies():
    from specbench.report.studies import study_verdicts

    verdicts = {v.claim: v for v in study_verdicts([])}
    assert verdicts["C4"].verdict == "not measured" and "specbench study horizon" in verdicts["C4"].why
    assert verdicts["C5"].verdict == "not measured" and "specbench study order" in verdicts["C5"].why


def write_records(directory, records):
    for r in records:
        save(directory / "runs" / f"{r.system}__{r.trainer}__{r.regime}__seed{r.seed}.json", r)


def test_report_is_written_and_tables_are_reproducible(tmp_path):
    write_records(tmp_path, sweep())
    md, page = write_report(tmp_path, tmp_path / "out")
    text = md.read_text()
    assert "| C1 | oscillator | dense | ✓ **holds** |" in text
    assert "predate the memory warm-up" in text  # hand-made records have no setup_memory_bytes
    assert (tmp_path / "out" / "figures" / "curves.png").stat().st_size > 1000
    html = page.read_text()
    # every figure the Markdown names is drawn and embedded: 3 overviews (C1-C3), the profiles, curves and test MSE
    figures = re.findall(r"!\[[^]]*\]\((figures/[^)]+\.png)\)", text)
    assert len(figures) == 6 and all((tmp_path / "out" / f).stat().st_size > 1000 for f in figures)
    assert html.count("data:image/png;base64,") == 6 and "<strong>holds</strong>" in html
    md2, _ = write_report(tmp_path, tmp_path / "again")
    assert md2.read_text() == text
    assert markdown_tables_only(tmp_path, tmp_path / "out") == text  # the committed-reports check, figures skipped


def test_corrupt_record_is_skipped_with_a_warning_naming_it(tmp_path):
    write_records(tmp_path, sweep())
    (tmp_path / "runs" / "broken.json").write_text("{not json")
    proc = run_cli("report", tmp_path, "--out", tmp_path / "out")
    assert proc.returncode == 0 and "broken.json" in proc.stderr
    assert "broken.json" in (tmp_path / "out" / "report.md").read_text()


def test_empty_directory_is_exit_2(tmp_path):
    (tmp_path / "runs").mkdir()
    proc = run_cli("report", tmp_path)
    assert proc.returncode == 2 and "no run records" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("report", tmp_path / "missing")
    assert proc.returncode == 2 and "not a directory" in proc.stderr


RATIO = re.compile(r"(>\s)?([0-9.e+-]+)x \(([0-9.e+-]+) to ([0-9.e+-]+), n=\d+\)")


def ratios_outside_their_spread(text: str) -> list[str]:
    """Every printed 'value x (low to high, n=k)' whose value lies outside [low, high]."""
    return [m.group(0) for m in RATIO.finditer(text)
            if not float(m.group(3)) <= float(m.group(2)) <= float(m.group(4))]


@pytest.mark.parametrize("spec", [(1.0, 1.2, 0.8), (0.2, 20.0, 2.0), (None, 1.0, 3.0), (1.0, 2.0)])
def test_no_printed_ratio_lies_outside_its_spread(tmp_path, spec):
    bases = {b: (20.0, None, 40.0)[:len(spec)] for b in BASES}
    write_records(tmp_path, sweep(spec=spec, baselines=bases))
    text = (write_report(tmp_path, tmp_path / "out")[0]).read_text()
    assert RATIO.search(text) and not ratios_outside_their_spread(text)


def board_rows(text: str) -> dict[str, list[str]]:
    """The Markdown verdict board: claim row -> its cells, left to right; and the header under key 'claim'."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| claim |"))
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not cells[0].startswith("---"):
            rows["claim" if cells[0] == "claim" else cells[0].split("**")[1]] = cells[1:]
    return rows


def two_cells():
    """oscillator/dense where C2 holds (100x) and lorenz/sparse where it fails (2x)."""
    return sweep(base_mse=1e-1) + [replace(r, system="lorenz", regime="sparse") for r in sweep(base_mse=2e-3)]


def test_the_board_shows_every_verdict_in_its_cell(tmp_path):
    records = two_cells()
    verdicts = claims(records)
    bd = board(verdicts)
    assert bd.rows == (("lorenz", "sparse"), ("oscillator", "dense"))
    for v in verdicts:
        assert bd.at(v.claim, v.system, v.regime) == [v]
    write_records(tmp_path, records)
    rows = board_rows(write_report(tmp_path, tmp_path / "out")[0].read_text())
    assert rows["claim"] == ["lorenz sparse", "oscillator dense"]
    from specbench.report.document import EMOJI
    for v in verdicts:
        assert rows[v.claim][bd.rows.index((v.system, v.regime))] == f"{EMOJI[v.verdict]} {v.verdict}"
    assert rows["C2"] == ["❌ fails", "✅ holds"]
    assert set(rows["C4"]) == {"➖"}  # no horizon study: not measured in every cell


def test_the_board_names_several_verdicts_in_one_cell():
    from specbench.verdicts import Verdict

    vs = [Verdict("C3", "lv", "horizon study, whole", "holds", {}, "why a", column="C3 at scale", sampling="dense",
                  label="horizon, whole"),
          Verdict("C3", "lv", "horizon study, segments", "fails", {}, "why b", column="C3 at scale",
                  sampling="dense", label="horizon, segments")]
    text = render_markdown([("board", board(vs))], Path("."))
    assert "✅ horizon, whole<br>❌ horizon, segments" in text
    page = render_html([("h1", "t"), ("board", board(vs))])
    assert 'class="v v-holds" title="why a"' in page and 'class="v v-fails" title="why b"' in page


def test_the_summary_is_made_from_the_verdicts():
    from specbench.report.studies import study_verdicts

    lines = summary(claims(two_cells()) + study_verdicts([]))
    assert len(lines) == 5
    assert lines[1].startswith("**C2 generalisation**: holds in 1 of 2 (oscillator dense), fails in 1 (lorenz sparse)")
    # the same records with lorenz's baselines 100x worse: C2 now holds in both cells, and the line says so
    better = sweep(base_mse=1e-1) + [replace(r, system="lorenz", regime="sparse") for r in sweep(base_mse=1e-1)]
    changed = summary(claims(better))
    assert changed[1].startswith("**C2 generalisation**: holds in 2 of 2 (lorenz sparse, oscillator dense);")
    assert changed[0] == lines[0] and changed[2] == lines[2]  # C1 and C3 did not change
    assert lines[3].startswith("**C4 time-parallel**: not measured: needs the horizon study")


def test_overview_dots_are_the_numbers_the_verdict_takes_the_median_of():
    records = sweep(spec=(1.0, 1.2, 0.8), baselines={"backprop-rk4": (20.0, None, 30.0),
                                                    "backprop-dopri5": (2.0, 3.0, 4.0), "adjoint-dopri5": (30, 30, 30)})
    dots = seed_ratios_by_cell(records, "C1")[("oscillator", "dense")]
    assert dots["backprop-rk4"] == [(pytest.approx(20.0), False), (pytest.approx(10 / 1.2), True),
                                    (pytest.approx(37.5), False)]
    [v] = [v for v in claims(records) if v.claim == "C1"]
    for claim in ("C1", "C2", "C3"):
        [v] = [v for v in claims(records) if v.claim == claim]
        for b, pairs in seed_ratios_by_cell(records, claim)[("oscillator", "dense")].items():
            assert summarise(pairs) == v.ratios[b]


def test_rollouts_missing_values_and_folds(tmp_path):
    records = [make_record(trainer=t, seed=s, ttt=None if t == "adjoint-dopri5" else 1.0, rollout=True)
               for t in ("spectral", *BASES) for s in (0, 1)]
    write_records(tmp_path, records)
    md, page = write_report(tmp_path, tmp_path / "out")
    text, html = md.read_text(), page.read_text()
    assert "figures/rollouts.png" in text and (tmp_path / "out" / "figures" / "rollouts.png").stat().st_size > 1000
    assert "inf" not in re.sub(r"[a-z]inf|inf[a-z]", "", text)  # never reached is one symbol
    assert "| adjoint-dopri5 | 2/2 | not reached | not reached |" in text
    for title in ("Settings", "Every verdict"):  # folded, and linked from the contents
        assert f"[{title}](#{title.lower().replace(' ', '-')})" in text
        assert f'<h2 id="{title.lower().replace(" ", "-")}">{title}</h2>\n<details>' in html
    assert "<details><summary>" in text and '<td class="num">' in html and "white-space:nowrap" in html
    assert html.count("<img ") == text.count("](figures/")


def test_the_board_and_its_marks_cover_every_verdict_value():
    from specbench.report.document import EMOJI
    from specbench.verdicts import VERDICTS

    assert set(MARK) == set(EMOJI) == set(VERDICTS)
    assert len(set(MARK.values())) == len(set(EMOJI.values())) == len(VERDICTS)


# ---- against the rivals, and the performance profiles ---------------------------------------------------------

def with_rivals(vf=(2.0, 2.4, 1.6), vf_mse=2e-3, shooting=(None, None, None), shooting_mse=1e-3, **kw):
    """sweep() (spectral at 1, 1.2 and 0.8 s, test MSE 1e-3) and the two rivals at these times to target (None:
    not reached within their budget) and test MSEs."""
    return sweep() + seeds("vf-node", vf, role="rival", test_mse=vf_mse, **kw) + \
        seeds("multiple-shooting", shooting, role="rival", test_mse=shooting_mse, **kw)


def test_rivals_never_enter_the_baseline_claims():
    plain, rivalled = claims(sweep()), claims(with_rivals(vf=(0.1, 0.1, 0.1), vf_mse=1.0))
    assert [v for v in rivalled if v.claim != "rivals"] == plain  # C1-C3 the same verdicts, ratios and reasons
    assert {b for v in rivalled if v.claim != "rivals" for b in v.ratios} == set(BASES)
    assert not [v for v in plain if v.claim == "rivals"]  # no rival records: no rivals verdict


def test_the_rivals_verdict_holds_on_both_measures_against_every_rival():
    [v] = [v for v in claims(with_rivals()) if v.claim == "rivals"]
    assert v.verdict == "holds" and (v.system, v.regime) == ("oscillator", "dense")
    # vf-node: 2/1, 2.4/1.2, 1.6/0.8 = 2x on every seed; test MSE 2e-3 / 1e-3 = 2x
    assert str(v.ratios[versus("vf-node", "time to target")]) == "2x (2 to 2, n=3)"
    assert v.ratios[versus("vf-node", "test MSE")].value == pytest.approx(2.0)
    # multiple shooting never reached within 10 s: a lower bound, 10 s over spectral's time (median 10x)
    shooting = v.ratios[versus("multiple-shooting", "time to target")]
    assert shooting.lower and shooting.value == pytest.approx(10.0) and str(shooting).startswith("> 10x")
    assert v.ratios[versus("multiple-shooting", "test MSE")].value == pytest.approx(1.0)  # equal: at least as good
    assert list(v.ratios) == [versus(r, m) for r in ("vf-node", "multiple-shooting")
                              for m in ("time to target", "test MSE")]


@pytest.mark.parametrize("kw, measure", [({"vf": (0.5, 0.6, 0.4)}, "time to target"),  # 0.5x
                                         ({"shooting_mse": 5e-4}, "test MSE")])  # 0.5x
def test_the_rivals_verdict_fails_when_a_rival_is_faster_or_more_accurate(kw, measure):
    [v] = [v for v in claims(with_rivals(**kw)) if v.claim == "rivals"]
    assert v.verdict == "fails" and v.why.startswith("below 1x: ") and f"{measure}: 0.5x" in v.why


def test_the_rivals_verdict_fails_when_a_rival_reaches_the_target_and_spectral_does_not():
    records = [r for r in with_rivals() if r.trainer != "spectral"] + seeds("spectral", (None, None, 1.0))
    [v] = [v for v in claims(records) if v.claim == "rivals"]
    assert v.verdict == "fails" and "vf-node reaches the target" in v.why


def test_a_short_rival_budget_leaves_the_rivals_verdict_inconclusive():
    # spectral at 4 s on every seed; vf-node never reached within its 2 s: > 0.5x, a bound that cannot decide 1x
    records = [r for r in with_rivals() if r.trainer not in ("spectral", "vf-node")] + \
        seeds("spectral", (4.0, 4.0, 4.0)) + seeds("vf-node", (None, None, None), role="rival", budget=2.0)
    [v] = [v for v in claims(records) if v.claim == "rivals"]
    bound = v.ratios[versus("vf-node", "time to target")]
    assert bound.lower and bound.value == pytest.approx(0.5)
    assert v.verdict == "inconclusive" and "a budget of 4 s" in v.why


def test_rivals_without_spectral_runs_are_not_measured():
    records = [replace(r, system="lorenz") for r in with_rivals() if r.trainer != "spectral"] + sweep()
    by_cell = {(v.system, v.claim): v.verdict for v in claims(records)}
    assert by_cell[("lorenz", "rivals")] == "not measured" and ("oscillator", "rivals") not in by_cell


def section(text: str, title: str) -> str:
    """The Markdown of one '## title' section, up to the next."""
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_report_judges_spectral_against_its_rivals(tmp_path):
    records = with_rivals(shooting_mse=5e-4)
    write_records(tmp_path, records)
    md, page = write_report(tmp_path, tmp_path / "out")
    text = md.read_text()
    [v] = [v for v in claims(records) if v.claim == "rivals"]
    assert v.verdict == "fails"
    rivals = section(text, "Against its rivals")
    assert "at least as fast and at least as accurate" in rivals and "below 1x" in rivals  # the rule
    head = ["system", "regime", "verdict", *[f"vs {versus(r, m)}" for r in ("vf-node", "multiple-shooting")
                                             for m in ("time to target", "test MSE")], "why"]
    assert "| " + " | ".join(head) + " |" in rivals
    assert (f"| oscillator | dense | {MARK['fails']} **fails** | " + " | ".join(str(r) for r in v.ratios.values())
            + f" | {v.why} |") in rivals
    assert board_rows(text)["rivals"] == ["❌ fails"]
    assert "**rivals** against its rivals" in text  # in the claims box
    assert 'id="against-its-rivals"' in page.read_text()


def test_without_rivals_there_is_no_rivals_section_row_or_column(tmp_path):
    write_records(tmp_path, sweep())
    text = write_report(tmp_path, tmp_path / "out")[0].read_text()
    assert "Against its rivals" not in text and "rivals" not in board_rows(text)
    assert "**rivals**" not in text and "vs vf-node" not in text


def test_the_report_ranks_every_trainer_with_performance_profiles(tmp_path):
    records = with_rivals(vf=(2.0, 2.0, 2.0))  # medians: spectral 1, vf-node 2, baselines 25, shooting never
    write_records(tmp_path, records)
    md, page = write_report(tmp_path, tmp_path / "out")
    text = md.read_text()
    prof = section(text, "Which method to use: performance profiles")
    assert "figures/profiles.png" in prof and (tmp_path / "out" / "figures" / "profiles.png").stat().st_size > 1000
    assert "No cell left out" in prof
    rows = [line for line in prof.splitlines() if line.startswith("| ") and not line.startswith("| trainer")]
    assert rows == ["| spectral | candidate | 1.000 | 1/1 | 1/1 |",
                    f"| vf-node | rival | {1 - math.log(2) / math.log(100):.3f} | 0/1 | 1/1 |",
                    *[f"| {b} | baseline | {1 - math.log(25) / math.log(100):.3f} | 0/1 | 1/1 |" for b in BASES],
                    "| multiple-shooting | rival | 0.000 | 0/1 | 0/1 |"]
    assert page.read_text().count("<img ") == text.count("](figures/")


def test_the_profile_caption_counts_the_cells_left_out(tmp_path):
    unsolved = [replace(r, system="lorenz", time_to_target_s=None) for r in sweep()]
    write_records(tmp_path, sweep() + unsolved)
    text = write_report(tmp_path, tmp_path / "out")[0].read_text()
    prof = section(text, "Which method to use: performance profiles")
    assert "1 of 2 cells left out: no trainer reached the target (lorenz dense)" in prof
    assert "| spectral | candidate | 1.000 | 1/1 | 1/1 |" in prof
