import math
import re
from pathlib import Path

import pytest

from specbench.claims import verdicts
from specbench.claims.verdicts import (MARK, Ratio, SeedRatio, claims, median, seed_ratios_by_cell, speedup, summarise,
                                       versus)
from specbench.core import measures
from specbench.report.board import board, summary
from specbench.report.document import markdown_tables_only, write_report
from specbench.report.render import render_html, render_markdown
from tests.helpers import (RATIO, make_record, one_line_exit_2, ratios_outside_their_spread, replace, run_cli, save,
                           seeds, sweep, write_records)

BASES = ("backprop-rk4", "backprop-dopri5", "adjoint-dopri5")



@pytest.fixture(autouse=True)
def _hand_made_sweeps_decide(monkeypatch):
    """The hand-made sweeps have one to three seeds: here their verdicts decide, as the reference's five seeds do
    (the indicative rule for fewer seeds has its own test, with the paper preset's count)."""
    monkeypatch.setattr(verdicts, "reference_seeds", lambda: 1)

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


def test_a_transient_crossing_is_a_first_crossing_not_a_sustained_time():
    from specbench.core.records import first_crossing, sustained

    curve = [[0.0, 0, 1.0], [0.05, 10, 5e-3], [1.0, 100, 0.2], [2.0, 200, 8e-3], [3.0, 300, 4e-3]]
    assert first_crossing(curve, 1e-2) == 0.05
    assert sustained(curve, 1e-2) == 2.0
    assert sustained(curve[:3], 1e-2) is None  # dipped, climbed back, ended above
    assert sustained([[0.0, 0, None]], 1e-2) is None


def crossed_and_kept(trainer, crossed, kept, **kw):
    """One record of `trainer` per seed: its first crossing of the target `crossed[i]` and its sustained time
    `kept[i]` (None: never)."""
    return [make_record(trainer=trainer, seed=i, ttt=c, kept=k, **kw) for i, (c, k) in enumerate(zip(crossed, kept))]


def test_c1_takes_the_first_crossing_and_c1_kept_the_sustained_time():
    # spectral crosses at 1, 1.2 and 0.8 s and climbs back above the target on every seed; the baselines cross at
    # 20, 25 and 30 s and stay below: C1 holds (20.8x), C1 kept fails (they keep the target, spectral does not)
    records = crossed_and_kept("spectral", (1.0, 1.2, 0.8), (None, None, None)) + \
        [r for b in BASES for r in crossed_and_kept(b, (20.0, 25.0, 30.0), (20.0, 25.0, 30.0), test_mse=1e-2)]
    c1, kept = verdict(records, "C1"), verdict(records, "C1 kept")
    assert c1.verdict == "holds" and str(c1.ratios["backprop-rk4"]) == "20.8x (20 to 37.5, n=3)"
    assert kept.verdict == "fails"
    assert "backprop-rk4 reaches and keeps the target (median 25 s) and spectral does not" in kept.why
    # the other way round: spectral keeps the target from 1 s, the baselines dip to it at 2-4 s and keep it from
    # 20-30 s: C1 is 2.5x and fails, C1 kept is C1's rule on the sustained times, 20.8x, and holds
    records = crossed_and_kept("spectral", (1.0, 1.2, 0.8), (1.0, 1.2, 0.8)) + \
        [r for b in BASES for r in crossed_and_kept(b, (2.0, 3.0, 4.0), (20.0, 25.0, 30.0), test_mse=1e-2)]
    c1, kept = verdict(records, "C1"), verdict(records, "C1 kept")
    assert c1.verdict == "fails" and c1.ratios["adjoint-dopri5"].value == pytest.approx(2.5)
    assert kept.verdict == "holds"
    assert kept.ratios["adjoint-dopri5"] == Ratio(pytest.approx(25 / 1.2), False, pytest.approx(20.0),
                                                  pytest.approx(37.5), 3)
    assert [v.claim for v in claims(records)] == ["C1", "C1 kept", "C2", "C3"]  # beside C1, in CLAIMS order


def test_the_report_shows_c1_kept_beside_c1(tmp_path):
    records = crossed_and_kept("spectral", (1.0, 1.2, 0.8), (None, None, None)) + \
        [r for b in BASES for r in crossed_and_kept(b, (20.0, 25.0, 30.0), (20.0, 25.0, 30.0), test_mse=1e-2)]
    write_records(tmp_path, records)
    text = markdown_tables_only(tmp_path, tmp_path / "out")
    rows = board_rows(text)
    assert list(rows)[1:3] == ["C1", "C1 kept"]
    assert rows["C1"] == ["✅ holds"] and rows["C1 kept"] == ["❌ fails"]
    assert "| **C1 kept** speed, target kept to the end |" in text
    assert "- **C1 speed**: holds in 1 of 1 (oscillator dense); C1 kept: fails in 1 of 1 (oscillator dense)." in text
    assert "**C1** speed: >= 10x faster to the target of the common metric (time to target: first crossing; the " \
           "model judged for C2 is the best checkpoint)" in text
    assert "**C1 kept** speed, target kept to the end: C1's rule on the sustained time" in text
    # the cell table: spectral's time to target (first crossing) and, beside it, its sustained time (never)
    assert "| spectral | 3/3 | 1 (0.8 to 1.2) | 1 (0.8 to 1.2) | not reached | not reached |" in text
    assert "| backprop-rk4 | 3/3 | 25 (20 to 30) | 25 (20 to 30) | 25 (20 to 30) | not reached |" in text
    every = section(text, "Every verdict")
    assert every.index("| C1 | oscillator") < every.index("| C1 kept | oscillator") < every.index("| C2 | oscillator")


def test_c1_kept_is_on_the_board_only_where_c1_is():
    from specbench.claims.study_verdicts import study_verdicts

    assert "C1 kept" not in board(study_verdicts([])).columns  # no headline runs: no C1 verdict
    assert board(claims(sweep())).columns[:3] == ("C1", "C1 kept", "C2")


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
    from specbench.claims.study_verdicts import study_verdicts

    verdicts = {v.claim: v for v in study_verdicts([])}
    assert verdicts["C4"].verdict == "not measured" and "specbench study horizon" in verdicts["C4"].why
    assert verdicts["C5"].verdict == "not measured" and "specbench study order" in verdicts["C5"].why


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


def test_figures_rendered_side_by_side_are_the_bytes_drawn_one_by_one(tmp_path, monkeypatch):
    from specbench.report import figures

    pools = []

    class Pool(figures.ProcessPoolExecutor):
        def __init__(self, *args, **kw):
            pools.append(args)
            super().__init__(*args, **kw)

    monkeypatch.setattr(figures, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(figures, "_can_fork", lambda: True)  # a test runner's threads would make it render in turn
    by_cell = {(s, g): per for s, g, per in verdicts.per_cell(sweep())}
    with figures.rendered_together(workers=2):
        together = [figures.curves_grid(by_cell, tmp_path / "a.png"),
                    figures.measure_grid(by_cell, measures.test_mse, "test MSE", tmp_path / "b.png")]
        assert not any(p.exists() for p in together)  # built, not yet rendered
    assert pools == [(2,)]  # on two forked processes
    alone = [figures.curves_grid(by_cell, tmp_path / "c.png"),
             figures.measure_grid(by_cell, measures.test_mse, "test MSE", tmp_path / "d.png")]
    assert [p.read_bytes() for p in together] == [p.read_bytes() for p in alone]
    with pytest.raises(OSError) as err, figures.rendered_together(workers=2):  # a renderer's error reaches here
        figures.curves_grid(by_cell, tmp_path / "a.png" / "e.png")  # its folder is a file
        figures.measure_grid(by_cell, measures.test_mse, "test MSE", tmp_path / "f.png")
    assert err.value.filename == str(tmp_path / "a.png" / "e.png")  # what the command line says, in one line
    assert figures.plt.get_fignums() == []  # every figure closed, rendered or not


def test_figures_are_rendered_one_by_one_while_another_thread_runs(tmp_path, monkeypatch):
    import threading

    from specbench.report import figures

    monkeypatch.setattr(figures, "ProcessPoolExecutor", None)  # a pool would fail: none may be started
    by_cell = {(s, g): per for s, g, per in verdicts.per_cell(sweep())}
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with figures.rendered_together(workers=2):
            paths = [figures.curves_grid(by_cell, tmp_path / "a.png"),
                     figures.measure_grid(by_cell, measures.test_mse, "test MSE", tmp_path / "b.png")]
    finally:
        stop.set()
        other.join()
    assert all(p.stat().st_size > 1000 for p in paths) and figures.plt.get_fignums() == []
    with pytest.raises(ValueError), figures.rendered_together(workers=2):  # an error while building: none drawn
        figures.curves_grid(by_cell, tmp_path / "c.png")
        raise ValueError
    assert not (tmp_path / "c.png").exists() and figures.plt.get_fignums() == []


def test_corrupt_record_is_skipped_with_a_warning_naming_it(tmp_path):
    write_records(tmp_path, sweep())
    (tmp_path / "runs" / "broken.json").write_text("{not json")
    proc = run_cli("report", tmp_path, "--out", tmp_path / "out")
    assert proc.returncode == 0 and "broken.json" in proc.stderr
    assert "broken.json" in (tmp_path / "out" / "report.md").read_text()


def test_empty_directory_is_exit_2(tmp_path):
    (tmp_path / "runs").mkdir()
    one_line_exit_2(run_cli("report", tmp_path), "no run records")
    one_line_exit_2(run_cli("report", tmp_path / "missing"), "not a directory")


@pytest.mark.parametrize("spec", [(1.0, 1.2, 0.8), (0.2, 20.0, 2.0), (None, 1.0, 3.0), (1.0, 2.0)])
def test_no_printed_ratio_lies_outside_its_spread(tmp_path, spec):
    bases = {b: (20.0, None, 40.0)[:len(spec)] for b in BASES}
    write_records(tmp_path, sweep(spec=spec, baselines=bases))
    text = markdown_tables_only(tmp_path, tmp_path / "out")
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
    rows = board_rows(markdown_tables_only(tmp_path, tmp_path / "out"))
    assert rows["claim"] == ["lorenz sparse", "oscillator dense"]
    from specbench.report.render import EMOJI
    for v in verdicts:
        assert rows[v.claim][bd.rows.index((v.system, v.regime))] == f"{EMOJI[v.verdict]} {v.verdict}"
    assert rows["C2"] == ["❌ fails", "✅ holds"]
    assert set(rows["C4"]) == {"➖"}  # no horizon study: not measured in every cell


def test_the_board_names_several_verdicts_in_one_cell():
    from specbench.claims.verdicts import Verdict

    vs = [Verdict("C3", "lv", "horizon study, whole", "holds", {}, "why a", column="C3 at scale", sampling="dense",
                  label="horizon, whole"),
          Verdict("C3", "lv", "horizon study, segments", "fails", {}, "why b", column="C3 at scale",
                  sampling="dense", label="horizon, segments")]
    text = render_markdown([("board", board(vs))], Path("."))
    assert "✅ horizon, whole<br>❌ horizon, segments" in text
    page = render_html([("h1", "t"), ("board", board(vs))])
    assert 'class="v v-holds" title="why a"' in page and 'class="v v-fails" title="why b"' in page


def test_the_summary_is_made_from_the_verdicts():
    from specbench.claims.study_verdicts import study_verdicts

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
    assert dots["backprop-rk4"] == [SeedRatio(pytest.approx(20.0)), SeedRatio(pytest.approx(10 / 1.2), lower=True),
                                    SeedRatio(pytest.approx(37.5))]
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
    from specbench.claims.verdicts import OUTCOMES
    from specbench.report.figures import VERDICT_COLOUR
    from specbench.report.render import EMOJI

    assert set(MARK) == set(EMOJI) == set(VERDICT_COLOUR) == set(OUTCOMES)
    assert len(set(MARK.values())) == len(set(EMOJI.values())) == len(OUTCOMES)


# ---- against the rivals, and the performance profiles ---------------------------------------------------------

def with_rivals(vf=(2.0, 2.4, 1.6), vf_mse=2e-3, shooting=(None, None, None), shooting_mse=1e-3, **kw):
    """sweep() (spectral at 1, 1.2 and 0.8 s, test MSE 1e-3) and the two rivals at these times to target (None:
    not reached within their budget) and test MSEs."""
    return sweep() + seeds("vf-node", vf, role="rival", test_mse=vf_mse, **kw) + \
        seeds("multiple-shooting", shooting, role="rival", test_mse=shooting_mse, **kw)


def test_the_summary_and_the_readme_block_say_how_spectral_fares_against_its_rivals(tmp_path):
    """Where rivals ran, the summary has a line for the rivals verdict after the paper's five, and the README's
    generated block carries that summary and the ranking of the performance profiles, from the records."""
    from specbench.report.document import read
    from specbench.report.readme import readme_block

    records = with_rivals(vf=(0.5, 0.6, 0.4))  # vf-node twice as fast as spectral on every seed
    lines = summary(claims(records))
    assert len(lines) == 6 and lines[5] == "**rivals** (against its rivals): fails in 1 of 1 (oscillator dense)."
    write_records(tmp_path, records)
    block = readme_block(read(tmp_path))
    assert "- **rivals** (against its rivals): fails in 1 of 1 (oscillator dense)." in block
    assert "over the 1 cell some trainer solved" in block
    assert ": vf-node 1.00 (fastest in 1), spectral 0.85 (fastest in 0), " in block  # 2x slower: 1 - log 2 / log 100
    assert block.index("**In short**") < block.index("| claim | system |")


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
    text = markdown_tables_only(tmp_path, tmp_path / "out")
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
    text = markdown_tables_only(tmp_path, tmp_path / "out")
    prof = section(text, "Which method to use: performance profiles")
    assert "1 of 2 cells left out: no trainer reached the target (lorenz dense)" in prof
    assert "| spectral | candidate | 1.000 | 1/1 | 1/1 |" in prof


def test_the_profiles_rank_the_equation_systems_and_leave_the_measured_benchmarks_to_their_section(tmp_path):
    # on the tanks, multiple shooting is fastest and spectral never reaches: ranked there, it would move both
    tanks = [replace(r, system="cascaded-tanks", time_to_target_s=None if r.trainer == "spectral" else 1.0)
             for r in sweep()]
    write_records(tmp_path, sweep() + tanks)
    text = markdown_tables_only(tmp_path, tmp_path / "out")
    prof = section(text, "Which method to use: performance profiles")
    assert "over 1 (system, regime) cell:" in prof and "No cell left out: some trainer reached the target in each of the 1." in prof
    assert "The measured benchmarks are not among the cells" in prof
    assert "| spectral | candidate | 1.000 | 1/1 | 1/1 |" in prof
    alone = tmp_path / "alone"
    write_records(alone, tanks)  # only measured records: they are the cells
    prof = section(markdown_tables_only(alone, alone / "out"), "Which method to use: performance profiles")
    assert "| spectral | candidate | 0.000 | 0/1 | 0/1 |" in prof and "not among the cells" not in prof


# ---- cells without a useful model, budgets that decide, commits, records before the best checkpoint ------------

def test_a_cell_where_no_trainer_learns_a_useful_model_says_so():
    # test NMSE: spectral 1.5, every baseline 2 (make_record's test NMSE is its test MSE): no model beats the mean
    records = sweep(test_mse=1.5, base_mse=2.0)
    by_claim = {v.claim: v for v in claims(records)}
    why = "no trainer learned a useful model here: the best median test NMSE is 1.5 (spectral), and every trainer's " \
          "is >= 1"
    for c in ("C1", "C1 kept", "C2"):
        assert (by_claim[c].verdict, by_claim[c].ratios) == ("no useful model", {})
        assert by_claim[c].why.startswith(why)
    assert by_claim["C3"].verdict == "holds"  # memory does not need a useful model
    # no ratio is drawn for the claims it stops; C3's dots stay
    assert seed_ratios_by_cell(records, "C1")[("oscillator", "dense")] == {b: [] for b in BASES}
    assert seed_ratios_by_cell(records, "C2")[("oscillator", "dense")] == {b: [] for b in BASES}
    assert all(len(pairs) == 3 for pairs in seed_ratios_by_cell(records, "C3")[("oscillator", "dense")].values())
    # the rivals compare the same two measures: no verdict between useless models there either, unless a rival
    # learned a useful model (vf-node at test NMSE 0.5), and then every comparison stands
    [rivals] = [v for v in claims(records + with_rivals(vf_mse=4.0, shooting_mse=5.0)[len(sweep()):])
                if v.claim == "rivals"]
    assert (rivals.verdict, rivals.ratios) == ("no useful model", {}) and rivals.why.startswith(why)
    useful = claims(records + with_rivals(vf_mse=0.5, shooting_mse=5.0)[len(sweep()):])
    # (spectral's own model is not useful, so its speed wins hold on training loss only)
    assert {v.claim: v.verdict for v in useful} == {"C1": "holds on training loss only",
                                                    "C1 kept": "holds on training loss only", "C2": "fails",
                                                    "C3": "holds", "rivals": "fails"}


@pytest.mark.parametrize("best, useless", [(1.0, True), (0.99, False)])
def test_a_useful_model_is_a_median_test_nmse_below_one(best, useless):
    # backprop-rk4's seeds at best/2, best and 50: its median is `best`; everyone else above 1
    records = [r for r in sweep(test_mse=3.0, base_mse=2.0) if r.trainer != "backprop-rk4"] + \
        [make_record(trainer="backprop-rk4", seed=i, ttt=20.0, test_mse=m) for i, m in enumerate((best / 2, best, 50))]
    assert (verdict(records, "C2").verdict == "no useful model") is useless
    if useless:
        assert "the best median test NMSE is 1 (backprop-rk4)" in verdict(records, "C2").why


def test_a_speed_claim_for_a_model_that_does_not_generalise_holds_on_training_loss_only():
    # spectral reaches the target first (C1 would hold) but its test NMSE is 2.5 on every seed; the baselines' is
    # 0.8: a win for a useless model is its own word, counted apart from "holds" on the board and in the summary
    from specbench.report.board import tally

    records = sweep(test_mse=2.5, base_mse=0.8)
    note = "spectral's own model is not useful on the test data (median test NMSE 2.5, >= 1)"
    for c in ("C1", "C1 kept"):
        assert verdict(records, c).verdict == "holds on training loss only" and note in verdict(records, c).why
    assert note not in verdict(records, "C2").why and verdict(records, "C2").verdict == "fails"
    assert tally([verdict(records, "C1")]) == "holds on training loss only in 1 of 1 (oscillator dense)"
    # a useful candidate (median 0.9) adds nothing and holds
    assert "not useful" not in verdict(sweep(test_mse=0.9, base_mse=0.8), "C1").why
    assert verdict(sweep(test_mse=0.9, base_mse=0.8), "C1").verdict == "holds"
    # a speed claim that fails for a useless model still fails (its reason says why the model does not count)
    slow = [replace(r, time_to_target_s=r.time_to_target_s * 20, times_to_targets={
        k: v * 20 if v else v for k, v in r.times_to_targets.items()}) if r.trainer == "spectral" else r
        for r in records]
    assert verdict(slow, "C1").verdict == "fails" and note in verdict(slow, "C1").why


def test_a_trainer_without_an_ok_run_is_not_useful():
    # the only trainer whose runs would be useful (test NMSE 1e-3) diverged on every seed; the rest are at 2 or 3
    records = [r for r in sweep(test_mse=3.0, base_mse=2.0) if r.trainer != "backprop-rk4"] + \
        [make_record(trainer="backprop-rk4", seed=i, ttt=None, status="diverged") for i in range(3)]
    assert verdict(records, "C1").verdict == "no useful model"
    assert "the best median test NMSE is 2 (backprop-dopri5)" in verdict(records, "C1").why
    # two useful seeds in three make a useful median
    mixed = [replace(r, test_nmse=1e-3) if r.trainer == "spectral" and r.seed < 2 else r for r in records]
    assert verdict(mixed, "C1").verdict != "no useful model"


def test_a_run_that_diverged_after_its_best_checkpoint_is_judged_on_that_model():
    """Early stopping keeps the best model whatever happens after it: a baseline that crossed the target at 2 s and
    diverged later is measured at 2 s (not bounded by its budget), and its checkpoint's test MSE counts in C2; one
    that diverged with no checkpoint (records before the rule) still reaches nothing and is judged on nothing."""
    records = sweep()
    later = {("backprop-rk4", 0): replace(make_record(trainer="backprop-rk4", seed=0, ttt=2.0, test_mse=4e-3),
                                          status="diverged", sustained_s=None)}
    records = [later.get((r.trainer, r.seed), r) for r in records]
    assert measures.judged(later[("backprop-rk4", 0)]) and measures.time_to_target(later[("backprop-rk4", 0)]) == 2.0
    dots = seed_ratios_by_cell(records, "C1")[("oscillator", "dense")]["backprop-rk4"]
    assert dots[0] == SeedRatio(2.0)  # 2 s / spectral's 1 s, measured
    assert seed_ratios_by_cell(records, "C2")[("oscillator", "dense")]["backprop-rk4"][0] == SeedRatio(4.0)
    early = make_record(trainer="backprop-rk4", seed=0, ttt=None, status="diverged")
    assert not measures.judged(early) and measures.time_to_target(early) is None and measures.test_mse(early) is None


def test_a_seed_where_the_baseline_arrives_and_spectral_does_not_counts_against_spectral():
    """Spectral misses the target on seed 2, where every baseline arrives at 8 s of its 10: that seed's ratio is
    8 s over spectral's 10 training seconds, 0.8 (an upper bound: at least the true one), not a dropped seed; the
    reason says so. With the same miss on seed 1 too, the median falls under 10x on an upper bound: C1 fails, and
    the ratio says "< 0.8x"."""
    arrive = {b: (20.0, 25.0, 8.0) for b in BASES}
    one = sweep(spec=(1.0, 1.2, None), baselines=arrive)
    assert seed_ratios_by_cell(one, "C1")[("oscillator", "dense")]["backprop-rk4"] == [
        SeedRatio(20.0), SeedRatio(25.0 / 1.2), SeedRatio(0.8, upper=True)]
    c1 = verdict(one, "C1")
    assert c1.verdict == "holds" and c1.ratios["backprop-rk4"] == Ratio(20.0, False, 0.8, 25.0 / 1.2, 3)
    assert c1.why.endswith("; spectral has not reached the target on seed 2 of 3: a baseline that has counts there "
                           "as its time over spectral's training seconds")
    two = sweep(spec=(1.0, None, None), baselines={b: (20.0, 8.0, 8.0) for b in BASES})
    c1 = verdict(two, "C1")
    assert c1.verdict == "fails" and str(c1.ratios["backprop-rk4"]) == "< 0.8x (0.8 to 20, n=3)"


def test_a_median_that_is_an_upper_bound_over_the_threshold_decides_nothing():
    """Seeds 3 and 4: spectral stopped at 0.5 s without reaching the target, where the baseline arrived at 8 s:
    each counts as 16x, at most. With them the median over five seeds (5, 5, 16, 16, 50) is 16x, over 10x but an
    upper bound (the true median may be 5x): C1 is inconclusive, and the reason says why."""
    short = {3, 4}
    records = [replace(r, train_seconds=0.5) if r.trainer == "spectral" and r.seed in short else r
               for r in sweep(spec=(1.0, 1.0, 1.0, None, None), baselines={b: (50.0, 5.0, 5.0, 8.0, 8.0)
                                                                            for b in BASES})]
    assert seed_ratios_by_cell(records, "C1")[("oscillator", "dense")]["backprop-rk4"][3] == SeedRatio(16.0, upper=True)
    c1 = verdict(records, "C1")
    assert c1.verdict == "inconclusive" and str(c1.ratios["backprop-rk4"]) == "< 16x (5 to 50, n=5)"
    assert "< 16x (5 to 50, n=5) against backprop-rk4 is an upper bound (spectral has not reached the target on " \
           "some seed)" in c1.why

def test_a_model_that_blows_up_on_the_test_states_is_infinitely_bad_in_c2():
    """A model whose test rollout failed has no test MSE in its record: C2 counts it as +inf, not as a missing
    seed. Seed 0: spectral's blew up (ratio 0); seed 1: the baseline's (ratio inf); seed 2: both (no ratio)."""
    blown = {("spectral", 0), ("backprop-rk4", 1), ("spectral", 2), ("backprop-rk4", 2)}
    records = [replace(r, test_mse=None, test_nmse=None) if (r.trainer, r.seed) in blown else r for r in sweep()]
    assert measures.test_mse(records[0]) == math.inf
    assert seed_ratios_by_cell(records, "C2")[("oscillator", "dense")]["backprop-rk4"] == [SeedRatio(0.0),
                                                                                          SeedRatio(math.inf)]


def test_the_report_names_the_cells_without_a_useful_model(tmp_path):
    records = sweep(base_mse=1e-1) + [replace(r, system="network", regime="sparse", test_nmse=1.2)
                                      for r in sweep(base_mse=1e-1)]
    write_records(tmp_path, records)
    md, page = write_report(tmp_path, tmp_path / "out")
    text = md.read_text()
    rows = board_rows(text)
    assert rows["claim"] == ["network sparse", "oscillator dense"]
    assert rows["C1"] == rows["C1 kept"] == rows["C2"] == ["🚫 no useful model", "✅ holds"]
    assert rows["C3"] == ["✅ holds", "✅ holds"]
    assert "🚫 no useful model" in text.split("| claim |")[0]  # in the legend above the board
    assert "- **C2 generalisation**: holds in 1 of 2 (oscillator dense), no useful model in 1 (network sparse)" in text
    assert "| C2 | network | sparse | ⊘ **no useful model** | n/a | n/a | n/a | no trainer learned a useful model " \
           "here: the best median test NMSE is 1.2 (spectral)" in text
    assert 'class="v v-no-useful-model"' in page.read_text() and ".v-no-useful-model{" in page.read_text()


def test_the_report_says_where_the_budget_cannot_decide_c1(tmp_path):
    # oscillator: spectral at 1 s, budget 10 s >= 10 x 1 s; lorenz: spectral at 4 s, 10x that is 40 s and the
    # baselines never reach the target in 10 s; network: neither spectral nor the baselines reach it
    never = {b: (None, None, None) for b in BASES}
    records = sweep() + [replace(r, system="lorenz") for r in sweep(spec=(4.0, 3.0, 5.0), baselines=never)] + \
        [replace(r, system="network") for r in sweep(spec=(None, None, None), baselines=never)]
    write_records(tmp_path, records)
    text = markdown_tables_only(tmp_path, tmp_path / "out")
    budgets = section(text, "Budgets")
    assert "It is in 1 of 3 (system, regime) cells; in the other 2 (lorenz dense, network dense) it is not" \
        in budgets
    assert "| lorenz | dense | 10 | 4 | 40 | no: 10x spectral's median needs 40 s |" in budgets
    assert "| network | dense | 10 | not reached | n/a | no: spectral did not reach the target within " \
           "10 s |" in budgets
    assert "| oscillator | dense | 10 | 1 | 10 | yes |" in budgets
    assert "at least 10x spectral's median time to target in 1 of 3 (system, regime) cells (see Budgets)" in text
    # each inconclusive C1 names the budget that would decide it
    by_cell = {(v.system, v.claim): v for v in claims(records)}
    assert by_cell[("lorenz", "C1")].verdict == "inconclusive"
    assert by_cell[("lorenz", "C1")].why.endswith("a budget of 40 s (10x spectral's median time to target) would "
                                                  "decide it")
    assert by_cell[("network", "C1")].verdict == "inconclusive"
    assert by_cell[("network", "C1")].why.endswith("a budget of more than 10 s would decide it: spectral has not "
                                                   "reached the target within 10 s")
    assert by_cell[("oscillator", "C1")].verdict == "holds" and "budget" not in by_cell[("oscillator", "C1")].why


def test_a_budget_enough_for_the_median_but_not_for_a_slow_seed():
    # spectral at 0.5, 1.2 and 1 s; rk4 at 1.25 s (2.5x), never within its 10 s (> 8.33x) and 30 s (30x): the
    # median is the bound 8.33x, open, though 10 s is 10x spectral's median (1 s): only a longer budget than 10 s
    # can raise seed 1's bound
    records = sweep(spec=(0.5, 1.2, 1.0), baselines={"backprop-rk4": (1.25, None, 30.0)})
    v = verdict(records, "C1")
    assert v.verdict == "inconclusive" and v.ratios["backprop-rk4"].lower
    assert v.why.endswith("a budget of more than 10 s would decide it: 10 s is at least 10x spectral's median time "
                          "to target, but not on every seed")


@pytest.mark.parametrize("commits, line", [
    ({}, "**commit**: every record at commit abc"),
    ({0: "def1234"}, "**commit**: records made at 2 commits: abc (8 runs), def1234 (4 runs)"),
    ({0: "abc-dirty"}, "**commit**: records made at 2 commits: abc (8 runs), abc-dirty (4 runs) ('-dirty': the "
                       "package's files differed from that commit)")])
def test_the_setup_names_the_commits_the_records_were_made_at(tmp_path, commits, line):
    records = [replace(r, env={**r.env, "git_commit": commits[r.seed]}) if r.seed in commits else r
               for r in sweep(spec=(1.0, 1.2, 0.8))]
    write_records(tmp_path, records)
    text = markdown_tables_only(tmp_path, tmp_path / "out")
    assert f"- {line}\n" in text


def test_the_setup_names_the_commits_of_the_headline_runs_and_of_the_studies_apart(tmp_path):
    from specbench.core.records import Study

    write_records(tmp_path, sweep(spec=(1.0, 1.2, 0.8)))  # 12 at commit abc
    studies = tmp_path / "studies" / "order"
    for i, commit in enumerate(("abc", "0ld", "0ld")):
        r = replace(make_record(), study=Study("order", "p", 4 + i, "spectral"), representation_error=1e-3,
                    env={**make_record().env, "git_commit": commit})
        save(studies / "runs" / r.name, r)
    text = markdown_tables_only(tmp_path, tmp_path / "out", [studies])
    assert "- **commit**: every headline record at commit abc; study records made at 2 commits: 0ld (2 runs), abc " \
           "(1 run)\n" in text


def schema_1(record) -> dict:
    """A record as schema 1 wrote it: the sustained times in time_to_target_s and times_to_targets, the first
    crossings beside them, no best checkpoint (the test errors of the final model)."""
    raw = record.to_dict()
    for key in ("sustained_s", "sustained_times", "best_checkpoint"):
        del raw[key]
    return {**raw, "schema": 1, "time_to_target_s": record.sustained_s, "times_to_targets": record.sustained_times,
            "first_crossing_s": record.time_to_target_s, "first_crossings": record.times_to_targets}


def test_c2_says_where_its_test_errors_are_of_the_final_model(tmp_path):
    note = "test errors are those of the final model (records made before the best-checkpoint rule)"
    assert note not in verdict(sweep(), "C2").why
    records = sweep()
    write_records(tmp_path, records)
    for r in records[:2]:  # spectral seeds 0 and 1 as schema 1 wrote them
        save(tmp_path / "runs" / f"{r.system}__{r.trainer}__{r.regime}__seed{r.seed}.json", schema_1(r))
    from specbench.report.document import load

    loaded, _ = load(tmp_path)
    assert sum(r.best_checkpoint is None for r in loaded) == 2
    v = verdict(loaded, "C2")
    assert v.verdict == "holds" and v.why.endswith(f"; 2 of 12 runs' {note}")
    assert verdict([replace(r, best_checkpoint=None) for r in sweep()], "C2").why.endswith(f"; every run's {note}")
    text = markdown_tables_only(tmp_path, tmp_path / "out")
    assert "2 ok runs of 12 predate the best-checkpoint rule (records of schema 1): their test errors (C2) are " \
           "those of the final model" in text


def test_a_verdict_from_fewer_seeds_than_the_reference_is_indicative_and_counted_apart(monkeypatch, tmp_path):
    """A quick run's three seeds (the reference decides on the paper preset's five): its decided verdicts are
    'indicative', counted apart in the summary, marked on the board, and the first screen says where the decisive
    verdicts are; a verdict that decides nothing (inconclusive) is not marked."""
    from specbench.running.presets import load_preset

    monkeypatch.setattr(verdicts, "reference_seeds", lambda: load_preset("paper").seeds)
    records = sweep()  # three seeds
    v = verdict(records, "C1")
    assert v.verdict == "holds" and v.indicative == "decided on 3 seeds; the reference's verdicts use 5"
    assert v.shown == "holds (indicative)"
    assert summary(claims(records))[0].startswith("**C1 speed**: holds (indicative) in 1 of 1")
    save_dir = tmp_path / "sweep"
    for r in records:
        save(save_dir / "runs" / f"{r.name}.json", r)
    text = markdown_tables_only(save_dir, tmp_path / "out")
    assert "✅ holds (indicative)" in text and "**(indicative)**: decided on fewer seeds than the 5" in text
    monkeypatch.setattr(verdicts, "reference_seeds", lambda: 3)
    assert not verdict(records, "C1").indicative and "(indicative)" not in summary(claims(records))[0]


def test_a_run_its_trainer_cannot_do_shows_na_with_its_reason_and_decides_no_verdict(tmp_path):
    """An "n/a" baseline run is listed with its reason and is no entrant: the verdict is the one without it."""
    records = sweep()
    na = replace(next(r for r in records if r.trainer != "spectral"), trainer="vf-node", role="rival", status="n/a",
                 error="VFNode cannot learn from inputs", times_to_targets={k: None for k in records[0].times_to_targets},
                 time_to_target_s=None, test_mse=None, test_nmse=None, curve=[], iterations=0)
    write_records(tmp_path, records + [na])
    text = markdown_tables_only(tmp_path, tmp_path / "out")
    assert "## Runs a trainer cannot do" in text and "| n/a | VFNode cannot learn from inputs |" in text
    write_records(tmp_path / "without", records)
    assert board_rows(text) == board_rows(markdown_tables_only(tmp_path / "without", tmp_path / "out2"))


def test_measured_benchmarks_are_placed_among_the_published_results_by_the_benchmarks_figure():
    from specbench.report.sections import MEASURED_TITLE, measured_blocks

    def run(trainer, seed, rmse, r2, structure=None):
        r = replace(make_record(system="cascaded-tanks", trainer=trainer, seed=seed, budget=300.0,
                                role="rival" if trainer == "multiple-shooting" else None), test_rmse=rmse, test_r2=r2)
        if structure:
            r.config["system_params"] = {"structure": structure}
        return r
    records = [run("spectral", s, v, 0.9) for s, v in enumerate((0.5, 0.6, 0.7))] + \
        [run("multiple-shooting", s, v, 0.95, "declared") for s, v in enumerate((0.30, 0.36, 0.5))] + \
        [make_record(system="oscillator")]
    blocks = measured_blocks(records)
    assert blocks[0] == ("h2", MEASURED_TITLE) and len(blocks) == 3  # the tanks only: EMPS did not run
    rows = blocks[1][2]
    names = [row[0] for row in rows]
    # by test RMSE, ours (medians 0.36 and 0.6) among the published (0.18 ... 0.75)
    assert names.index("**multiple-shooting**") == names.index("neural ODE, soft-constrained integration "
                                                             "(Crank-Nicolson residual penalty)") - 1
    assert names.index("**spectral**") == names.index("Volterra model") + 1
    ms = rows[names.index("**multiple-shooting**")]
    assert ms[1] == "known structure" and ms[2] == "0.36 (0.3 to 0.5)" and ms[5] == "this run"
    assert all("published, other hardware" in row[5] for row in rows if not row[0].startswith("**"))
    assert measured_blocks([make_record()]) == []


def test_a_failed_seed_is_the_worst_fit_of_either_figure_and_emps_ranks_by_r2_from_the_top():
    from specbench.report.sections import fit_spread, measured_blocks

    assert fit_spread([0.5, 0.9, None], "r2") == (0.5, "0.5 (n/a to 0.9)")
    assert fit_spread([0.3, None], "rmse") == (math.inf, "n/a (0.3 to n/a)")
    assert fit_spread([0.3, 0.5], "rmse") == (0.4, "0.4 (0.3 to 0.5)")

    def run(trainer, seed, r2):
        return replace(make_record(system="emps", trainer=trainer, seed=seed, budget=300.0,
                                   role="rival" if trainer == "multiple-shooting" else None), test_r2=r2,
                       test_rmse=None if r2 is None else 0.01)
    records = [run("spectral", s, v) for s, v in enumerate((0.97, None, 0.2))] + \
        [run("multiple-shooting", s, v) for s, v in enumerate((0.995, 0.999, 0.96))]
    rows = measured_blocks(records)[1][2]
    names = [row[0] for row in rows]
    assert names[0] == "**multiple-shooting**" and rows[0][3] == "0.995 (0.96 to 0.999)"
    assert rows[1][3] == "> 0.99" and names[-1] == "**spectral**" and rows[-1][3] == "0.2 (n/a to 0.97)"
    assert names.index("linear models") == len(rows) - 2


def test_the_summary_counts_the_measured_benchmarks_apart_from_the_equation_systems():
    """A count over the equation systems reads the same with measured benchmarks beside them: theirs follows."""
    equations = two_cells()
    tanks = [replace(r, system="cascaded-tanks") for r in sweep(base_mse=2e-3)]  # C2 fails there (2x)
    alone, both = summary(claims(equations)), summary(claims(equations + tanks))
    assert both[1].startswith(alone[1].rstrip(".").split(";")[0] + "; on the measured benchmarks: fails in 1 of 1 "
                              "(cascaded-tanks dense)")
    assert summary(claims(tanks))[1].startswith("**C2 generalisation**: fails in 1 of 1 (cascaded-tanks dense)")


def test_the_readme_block_carries_the_measured_benchmarks_beside_the_best_published_neural_ode(tmp_path):
    from specbench.report.document import read
    from specbench.report.readme import readme_block

    def run(system, trainer, seed, rmse, r2):
        r = replace(make_record(system=system, trainer=trainer, seed=seed, budget=300.0,
                                role="rival" if trainer == "multiple-shooting" else None), test_rmse=rmse, test_r2=r2)
        r.config["system_params"] = {"structure": "declared"}
        return r
    records = sweep() + [run("cascaded-tanks", "spectral", s, v, 0.9) for s, v in enumerate((0.5, 0.6, 0.7))] + \
        [run("emps", "multiple-shooting", s, 0.01, v) for s, v in enumerate((0.99, 0.995, None))]
    write_records(tmp_path, records)
    block = readme_block(read(tmp_path))
    assert "| trainer | model | cascaded-tanks: test RMSE | emps: test R² |" in block
    assert "| multiple-shooting | known structure | not run | 0.99 (n/a to 0.995), 3 seeds |" in block
    assert "| spectral | known structure | 0.6 (0.5 to 0.7), 3 seeds | not run |" in block
    assert ("| best published neural ODE | other hardware | 0.33 (Forgione and Piga 2021, 533 s) | "
            "> 0.99 (Forgione and Piga 2021, 710 s) |") in block
    write_records(tmp_path / "equations", sweep())
    assert "measured benchmarks" not in readme_block(read(tmp_path / "equations"))


def test_the_report_lists_each_verdict_that_moved_since_earlier_records(tmp_path):
    """`specbench report NEW --since OLD`: the verdicts whose cell changed, then and now, with what changed in the
    cell; the ones that stayed are counted."""
    old = two_cells()  # C2 holds on oscillator dense, fails on lorenz sparse
    new = sweep(base_mse=1e-1, budget=20.0) + [replace(r, system="lorenz", regime="sparse")
                                               for r in sweep(base_mse=1e-1)]
    for r in new:
        if r.system == "lorenz" and r.trainer == "backprop-rk4":
            r.config["lr"] = 0.003
        r.config["cadence"] = {"first": 0.01, "resolution": 0.1}  # rules of the harness: named once, for every cell
    new = [replace(r, setup_seconds=0.2, env={**r.env, "git_commit": "def"}) for r in new]
    write_records(tmp_path / "old", old)
    write_records(tmp_path / "new", new)
    assert run_cli("report", tmp_path / "new", "--since", tmp_path / "old", "--out", tmp_path / "out").returncode == 0
    text = (tmp_path / "out" / "report.md").read_text()
    section = text[text.index("## What changed since the earlier records"):text.index("## Every verdict")]
    rows = [line for line in section.splitlines() if line.startswith("| C")]
    assert len(rows) == 1, rows  # C2 on lorenz sparse: fails -> holds; everything else stayed
    assert rows[0].startswith("| C2 | lorenz | sparse | fails | holds |")
    assert rows[0].endswith("| backprop-rk4: lr 0.01 -> 0.003 |")
    from specbench.report.document import read
    decided = sum(v.system != "-" for v in read(tmp_path / "new").verdicts)  # "not measured" ones are no place
    assert f"1 verdict moved, {decided - 1} stayed the same" in section
    assert "budget 10 s -> 20 s" not in section  # oscillator's budget changed, but no verdict of it moved
    assert ("In every cell: commit abc -> def; evaluation cadence none -> first 0.01, resolution 0.1; the trainer's "
            "setup off the clock -> on the clock (ok runs).") in section
    assert f"--since {tmp_path / 'old'}" in text  # the command that regenerates it names the earlier records
    one_line_exit_2(run_cli("report", tmp_path / "new", "--since", tmp_path / "nothing"), "--since")
    one_line_exit_2(run_cli("report", tmp_path / "new", "--since-studies", tmp_path / "old"), "give --since too")
