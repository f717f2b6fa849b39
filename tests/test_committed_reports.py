"""The committed reports are made from the committed records: every table regenerates byte for byte, every record
behind them is tracked, and the README's verdict block is the one the records give."""
import math
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from specbench.core.records import load, record_paths
from specbench.report.document import markdown_tables_only, read
from specbench.report.readme import README_BEGIN, README_END, readme_block
from specbench.running.studies import vocabulary
from tests.helpers import ROOT, ratios_outside_their_spread, replace, save

REPORTS = sorted(p.parent for p in (ROOT / "reports").glob("*/report.md"))
COMMAND = re.compile(r"Regenerate with `specbench report ([^`]+)`")


def command(report_dir: Path) -> tuple[Path, list[Path], Path | None, list[Path]]:
    """The records directory and study directories a committed report names as its sources, and the earlier records
    (and their studies) it was made --since, if it was."""
    m = COMMAND.search((report_dir / "report.md").read_text())
    assert m, f"{report_dir}/report.md does not say how to regenerate it"
    words = m.group(1).split()

    def after(option: str) -> list[Path]:
        return [ROOT / words[i + 1] for i, w in enumerate(words) if w == option]
    return ROOT / words[0], after("--studies"), next(iter(after("--since")), None), after("--since-studies")


def regenerate(report_dir: Path, records: Path, studies: list[Path], since: Path | None = None,
               since_studies: list[Path] = ()) -> str:
    def rel(p: Path) -> Path:
        return p.relative_to(ROOT) if p.is_relative_to(ROOT) else p
    return markdown_tables_only(rel(records), report_dir, [rel(s) for s in studies],
                                None if since is None else rel(since), [rel(s) for s in since_studies])


def test_there_are_committed_reports():
    assert REPORTS


@pytest.mark.parametrize("report_dir", REPORTS, ids=lambda p: p.name)
def test_committed_report_regenerates_from_committed_records(report_dir, monkeypatch):
    monkeypatch.chdir(ROOT)
    records, studies, since, since_studies = command(report_dir)
    tracked = set(subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True)
                  .stdout.split())
    for d in [records, *studies, *([since] if since else []), *since_studies]:
        files = [p for runs in d.rglob("runs") for p in record_paths(runs)] + \
            [p for p in d.glob("*.json")]
        assert files, f"no records in {d}"
        untracked = [str(p.relative_to(ROOT)) for p in files if str(p.relative_to(ROOT)) not in tracked]
        assert not untracked, f"records behind {report_dir.name} are not tracked in git: {untracked[:3]}"
    text = (report_dir / "report.md").read_text()
    assert regenerate(report_dir, records, studies, since, since_studies) == text
    assert not ratios_outside_their_spread(text)


def spread(values) -> str:
    """The report's 'median (min to max)' of times over seeds, written out: a run that never reached the target
    (None) counts as later than any time in the median, and is 'not reached' wherever it decides what is shown."""
    present = [v for v in values if v is not None]
    if not present:
        return "not reached"
    m = statistics.median([math.inf if v is None else v for v in values])
    text = "not reached" if m == math.inf else f"{m:.3g}"
    if len(values) > 1:
        text += f" ({min(present):.3g} to {f'{max(present):.3g}' if len(present) == len(values) else 'not reached'})"
    return text


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def test_an_altered_record_changes_the_regenerated_report(tmp_path, monkeypatch):
    """Triple a spectral run's times to its targets: its trainer's row in its cell's table shows the tripled times
    (medians and spreads over seeds recomputed here from the records), the C1 ratios of its (system, regime) fall
    to a third (each pairs that one seed), the verdict stays, its cell's row under Budgets shows spectral's new
    median time and 10x it, and nothing else in the report changes."""
    monkeypatch.chdir(ROOT)
    report_dir = ROOT / "reports" / "small-reference"
    records, studies, *_ = command(report_dir)
    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    runs = {p: load(p, vocabulary()) for p in sorted((copy / "runs").glob("*.json"))}
    path, r = next((p, r) for p, r in runs.items() if r.trainer == "spectral" and r.time_to_target_s is not None)
    runs[path] = replace(r, time_to_target_s=3 * r.time_to_target_s,
                         times_to_targets={k: None if v is None else 3 * v for k, v in r.times_to_targets.items()})
    save(path, runs[path])
    committed = COMMAND.sub("", (report_dir / "report.md").read_text()).splitlines()
    altered = COMMAND.sub("", markdown_tables_only(copy, report_dir, [s.relative_to(ROOT) for s in studies])
                          ).splitlines()  # the copy's path differs; the tables must too
    assert len(altered) == len(committed)
    changed = [i for i, (a, b) in enumerate(zip(committed, altered)) if a != b]
    cell = next(i for i, line in enumerate(committed) if line.startswith(f"<details><summary>{r.system} ({r.regime}):"))
    row = next(i for i in range(cell, len(committed)) if committed[i].startswith("| spectral |"))
    verdict = next(i for i, line in enumerate(committed) if line.startswith(f"| C1 | {r.system} | {r.regime} |"))
    budget = next(i for i, line in enumerate(committed) if line.startswith(f"| {r.system} | {r.regime} | 10 |"))
    assert changed == sorted([budget, row, verdict])

    same_cell = [x for x in runs.values() if (x.system, x.regime, x.trainer) == (r.system, r.regime, "spectral")]
    keys = sorted(r.times_to_targets, key=float, reverse=True)  # 3x, 1x, 1/3x the target: columns 2, 3 and 5
    for column, key in zip((2, 3, 5), keys):
        assert cells(altered[row])[column] == spread([x.times_to_targets[key] if x.status == "ok" else None
                                                      for x in same_cell])
    untouched = [0, 1, 4, *range(6, len(cells(committed[row])))]
    assert [cells(altered[row])[i] for i in untouched] == [cells(committed[row])[i] for i in untouched]
    median = statistics.median([math.inf if x.time_to_target_s is None else x.time_to_target_s for x in same_cell])
    assert cells(altered[budget])[3:5] == [f"{median:.3g}", f"{10 * median:.3g}"]
    assert cells(altered[budget])[5] == f"no: 10x spectral's median needs {10 * median:.3g} s"

    # each ratio pairs two seeds (median = their mean): this seed's per-seed ratio falls to a third, the other's stays
    ratio = re.compile(r"(>?) ?([0-9.e+-]+)x \(([0-9.e+-]+) to ([0-9.e+-]+), n=(\d+)\)")
    before, after = ratio.findall(committed[verdict]), ratio.findall(altered[verdict])
    assert before and len(after) == len(before)
    for (bound, _, low, high, n), (bound_after, median_after, low_after, high_after, n_after) in zip(before, after):
        assert (bound_after, n_after) == (bound, n) == (bound, "2")
        pairs = [sorted([float(low) / 3, float(high)]), sorted([float(low), float(high) / 3])]
        assert [float(low_after), float(high_after)] in [pytest.approx(p, rel=1e-2) for p in pairs]
        assert float(median_after) == pytest.approx((float(low_after) + float(high_after)) / 2, rel=1e-2)
    assert cells(altered[verdict])[3] == cells(committed[verdict])[3]  # ratios lower, still below 10x: same verdict


def test_readme_verdict_block_is_generated_from_the_reference_records(monkeypatch):
    monkeypatch.chdir(ROOT)
    readme = (ROOT / "README.md").read_text()
    assert README_BEGIN in readme and README_END in readme
    # the newest decisive reference whose report is written (round two, then the first; README, "Reference results")
    source = next(name for name in ("reference-2", "reference", "small-reference")
                  if (ROOT / "reports" / name / "report.md").exists())
    records, studies, *_ = command(ROOT / "reports" / source)
    block = readme_block(read(records.relative_to(ROOT), [s.relative_to(ROOT) for s in studies]))
    assert block in readme


def test_spectral_change_table_regenerates_from_its_committed_records():
    """reports/spectral-change.md (issue 14's before/after) is what benchmarks/spectral_change.py makes of the
    tracked records under results/spectral-change."""
    from benchmarks.spectral_change import ROOT as RECORDS, markdown

    assert (ROOT / "reports" / "spectral-change.md").read_text() == markdown()
    files = [str(p.relative_to(ROOT)) for p in RECORDS.glob("*/runs/*.json")]
    tracked = subprocess.run(["git", "ls-files", "--", *files], cwd=ROOT, capture_output=True, text=True).stdout
    assert files and set(tracked.split()) == set(files)
