"""The committed reports are made from the committed records: every table regenerates byte for byte, every record
behind them is tracked, and the README's verdict block is the one the records give."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from specbench.report import README_BEGIN, README_END, markdown_tables_only, readme_block
from specbench.results import load, write_atomic
from tests.test_report import ratios_outside_their_spread

ROOT = Path(__file__).resolve().parents[1]
REPORTS = sorted(p.parent for p in (ROOT / "reports").glob("*/report.md"))
COMMAND = re.compile(r"Regenerate with `specbench report ([^`]+)`")


def command(report_dir: Path) -> tuple[Path, list[Path]]:
    """The records directory and study directories a committed report names as its sources."""
    m = COMMAND.search((report_dir / "report.md").read_text())
    assert m, f"{report_dir}/report.md does not say how to regenerate it"
    words = m.group(1).split()
    studies = [ROOT / words[i + 1] for i, w in enumerate(words) if w == "--studies"]
    return ROOT / words[0], studies


def regenerate(report_dir: Path, records: Path, studies: list[Path]) -> str:
    return markdown_tables_only(records.relative_to(ROOT) if records.is_relative_to(ROOT) else records, report_dir,
                                [s.relative_to(ROOT) if s.is_relative_to(ROOT) else s for s in studies])


def test_there_are_committed_reports():
    assert REPORTS


@pytest.mark.parametrize("report_dir", REPORTS, ids=lambda p: p.name)
def test_committed_report_regenerates_from_committed_records(report_dir, monkeypatch):
    monkeypatch.chdir(ROOT)
    records, studies = command(report_dir)
    tracked = set(subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True)
                  .stdout.split())
    for d in [records, *studies]:
        files = [p for p in d.rglob("runs/*.json") if not p.name.startswith(".")] + \
            [p for p in d.glob("*.json")]
        assert files, f"no records in {d}"
        untracked = [str(p.relative_to(ROOT)) for p in files if str(p.relative_to(ROOT)) not in tracked]
        assert not untracked, f"records behind {report_dir.name} are not tracked in git: {untracked[:3]}"
    text = (report_dir / "report.md").read_text()
    assert regenerate(report_dir, records, studies) == text
    assert not ratios_outside_their_spread(text)


def test_an_altered_record_changes_the_regenerated_report(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    report_dir = REPORTS[0]
    records, studies = command(report_dir)
    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    path = next(p for p in sorted((copy / "runs").glob("*.json")) if load(p)["time_to_target_s"] is not None)
    r = load(path)
    r["time_to_target_s"] *= 3
    r["times_to_targets"] = {k: (v * 3 if v is not None else None) for k, v in r["times_to_targets"].items()}
    write_atomic(path, r)
    committed = (report_dir / "report.md").read_text()
    altered = markdown_tables_only(copy, report_dir, [s.relative_to(ROOT) for s in studies])
    strip = lambda text: COMMAND.sub("", text)  # noqa: E731  (the copy's path differs; the tables must too)
    assert strip(altered) != strip(committed)


def test_readme_verdict_block_is_generated_from_the_reference_records(monkeypatch):
    monkeypatch.chdir(ROOT)
    readme = (ROOT / "README.md").read_text()
    assert README_BEGIN in readme and README_END in readme
    records, studies = command(ROOT / "reports" / "reference")
    block = readme_block(records.relative_to(ROOT), [s.relative_to(ROOT) for s in studies])
    assert block in readme


def test_spectral_change_table_regenerates_from_its_committed_records():
    """reports/spectral-change.md (issue 14's before/after) is what benchmarks/spectral_change.py makes of the
    tracked records under results/spectral-change."""
    from benchmarks.spectral_change import ROOT as RECORDS, markdown

    assert (ROOT / "reports" / "spectral-change.md").read_text() == markdown()
    files = [str(p.relative_to(ROOT)) for p in RECORDS.glob("*/runs/*.json")]
    tracked = subprocess.run(["git", "ls-files", "--", *files], cwd=ROOT, capture_output=True, text=True).stdout
    assert files and set(tracked.split()) == set(files)
