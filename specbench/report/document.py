"""`specbench report DIR`: report.md, a self-contained report.html and PNG figures from run records.

The report is built once as a list of blocks (headings, paragraphs, tables, figures) and rendered twice
(specbench.report.render), so the Markdown and the HTML cannot disagree. This module reads the records, decides
every verdict once per report (`read`: the headline claims and the studies', specbench.claims), and puts the sections
(specbench.report.sections, .study_sections, .board) in their order; the README's verdict block is made from the same
`Decided` (specbench.report.readme). Tables depend only on the records: regenerating from the same records gives the
same tables, byte for byte.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from specbench.claims.profiles import profiles
from specbench.claims.study_verdicts import study_verdicts
from specbench.claims.verdicts import (CLAIMS, KEPT, MARK, MSE_CLAIM, NOT_REACHED, RIVALS, TRAINING_ONLY, USEFUL_NMSE,
                                       USELESS, Verdict, baselines_in, claims, group, per_cell)
from specbench.core import measures, table
from specbench.core.errors import UsageError
from specbench.core.io import write_text_atomic
from specbench.core.records import Record, record_settings
from specbench.report import figures
from specbench.report.board import board, equation_records, summary
from specbench.report.render import render_html, render_markdown
from specbench.report.sections import (ENV_KEYS, INDICATIVE, RATIOS, budget_blocks, cell_table, change_blocks, count,
                                       intro, low_data_figure, measured_blocks, overview_figure, profile_blocks,
                                       rivals_blocks, setup, wall_blocks)
from specbench.report.study_sections import study_blocks
from specbench.running.studies import vocabulary


@dataclass(frozen=True)
class Decided:
    """A report's records, read once, and every verdict on them, decided once: the report and the README's verdict
    block are both made from one, so they cannot disagree."""
    records: list[Record]  # every record read
    headline: list[Record]  # the headline runs, a run its trainer cannot do ("n/a") left out: it is no entrant
    studied: list[Record]  # the scaling studies' runs
    warnings: list[str]  # a line per file left out
    command: str  # the command that regenerates the report
    verdicts: list[Verdict]  # the headline claims, then the studies'
    since: Decided | None = None  # earlier records, read and decided the same way: what moved since them


def read(records_dir: Path | str, studies=(), since: Path | str | None = None, since_studies=()) -> Decided:
    """The records of a sweep and of the study directories, and every verdict on them; with `since` (and its
    `since_studies`), earlier records read and decided the same way, for the section on what moved. Records of one
    (system, regime, trainer) with different settings are refused (`refuse_mixed_settings`) before anything is
    decided."""
    if since_studies and since is None:
        raise UsageError("--since-studies names the earlier records' studies: give --since too")
    earlier = None
    if since is not None:
        try:
            earlier = read(since, since_studies)
        except UsageError as exc:
            raise UsageError(f"--since {since}: {exc}") from None
    records, warnings = load(records_dir, studies)
    headline = [r for r in records if not r.study and r.status != "n/a"]
    studied = [r for r in records if r.study]
    refuse_mixed_settings(headline)
    return Decided(records, headline, studied, warnings, sources(records_dir, studies, since, since_studies),
                   claims(headline) + study_verdicts(studied), earlier)


def write_report(records_dir: Path | str, out_dir: Path | str | None = None,
                 studies: list[Path] | tuple = ()) -> tuple[Path, Path]:
    """Write report.md, report.html and figures/*.png under out_dir (default: records_dir). Records with a
    `study` (in records_dir or in the `studies` directories) are drawn as scaling studies and decide C3-C5.
    Every file is written atomically (temporary file, then rename)."""
    return write(read(records_dir, studies), Path(out_dir or records_dir))


def write(decided: Decided, out_dir: Path) -> tuple[Path, Path]:
    """`write_report` of records already read and decided (`read`)."""
    try:
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write to {out_dir}: {exc.strerror}") from None
    with figures.rendered_together():  # the figures rendered side by side, on this machine's cores
        blocks = build(decided, out_dir)
    md, page = out_dir / "report.md", out_dir / "report.html"
    write_text_atomic(md, render_markdown(blocks, out_dir))
    write_text_atomic(page, render_html(blocks))
    return md, page


def markdown_tables_only(records_dir: Path | str, out_dir: Path | str, studies=(), since=None,
                         since_studies=()) -> str:
    """The Markdown report as `specbench report` would write it (`read`'s arguments), without drawing a figure
    (their files are only named): what the committed-reports test compares, in seconds rather than minutes."""
    decided = read(records_dir, studies, since, since_studies)
    with figures.drawing(False):
        return render_markdown(build(decided, Path(out_dir)), Path(out_dir))


def load(records_dir: Path | str, studies=()) -> tuple[list[Record], list[str]]:
    """The records of a sweep and of the study directories (specbench.core.table.load), and a warning per file left
    out. Every trainer and study this process knows is accepted (`specbench.running.studies.vocabulary`: a plugin's
    trainer needs --plugin)."""
    return table.load(records_dir, studies, vocabulary())


def sources(records_dir, studies, since=None, since_studies=()) -> str:
    """The command that regenerates the report, from the directories it read (as given), quoted for a POSIX shell
    so that it runs as printed (a path with a space or a quote in it)."""
    return shlex.join(["specbench", "report", Path(records_dir).as_posix(),
                       *[arg for d in studies for arg in ("--studies", Path(d).as_posix())],
                       *(["--since", Path(since).as_posix()] if since is not None else []),
                       *[arg for d in since_studies for arg in ("--since-studies", Path(d).as_posix())]])


TITLE = "specbench: SNODE's claims against backprop and adjoint baselines"


def refuse_mixed_settings(records: list[Record]) -> None:
    """The seeds of one (system, regime, trainer) must share their settings, or their median means nothing: a
    setting both records name (budget, noise, every trainer setting) may not differ."""
    for (system, regime, trainer), runs in group(records).items():
        first = runs[0].config
        for r in runs[1:]:
            differ = sorted(k for k in set(first) & set(r.config) if first[k] != r.config[k])
            if differ or r.target_loss != runs[0].target_loss:
                what = ", ".join(f"{k} {first[k]!r} and {r.config[k]!r}" for k in differ[:3]) or "target"
                raise UsageError(f"the records of {system} / {regime} / {trainer} mix settings ({what}); rerun "
                                 "them with one setting (specbench run --replace) or report them apart")


def build(decided: Decided, out_dir: Path) -> list[tuple]:
    """The report as blocks: the first screen (verdict board, C1's overview, the summary, the setup and the
    claims), the overview of every claim's per-seed ratios, spectral against its rivals (where rivals ran), the
    performance profiles of every trainer, the per-system small multiples, the scaling studies, then the folded
    tables (numbers per cell, every verdict, settings) and what it was made with; with earlier records
    (`Decided.since`), before every verdict, the verdicts that moved since them."""
    all_records, records, studied = decided.records, decided.headline, decided.studied
    verdicts, warnings, command = decided.verdicts, decided.warnings, decided.command
    fig_dir = out_dir / "figures"
    by_cell = {(s, g): per for s, g, per in per_cell(records)}
    b: list[tuple] = [("h1", TITLE), ("p", intro(all_records, records, studied, verdicts)), ("toc",)]
    overview = {claim: overview_figure(records, verdicts, claim, fig_dir) for claim in ("C1", "C2", "C3")}
    low = low_data_figure(studied, verdicts, fig_dir)
    bd = board(verdicts)
    b.append(("board", bd))
    if any(v.indicative for v in verdicts):
        b.append(("p", INDICATIVE))
    b.append(("columns", [[("box", "In short", summary(verdicts)), ("box", "Setup", setup(all_records, command))],
                          [overview["C1"]] if overview["C1"] else []]))
    b.append(("box", "The claims", [f"**{k}** {CLAIMS[k].text}" for k in bd.columns]))
    if not records and low:
        b.append(low)

    if records:
        b.append(("h2", "Per-seed ratios"))
        b.append(("columns", [[overview[c]] for c in ("C2", "C3") if overview[c]]))
        b.append(("columns", [[low], [("p", RATIOS)]]) if low else ("p", RATIOS))
        old = [r for r in records if r.ok and r.best_checkpoint is None]
        if old:
            b.append(("p", f"{count(old, 'ok run')} of {sum(r.ok for r in records)} predate the best-checkpoint rule "
                           "(records of schema 1): their test errors (C2) are those of the final model, at the end of "
                           "the budget, not of the best checkpoint, and the C2 reasons say so."))
        if any(r.setup_memory_bytes is None for r in records):
            b.append(("p", "Some runs predate the memory warm-up (their records have no setup_memory_bytes): "
                           "torch's one-off allocations are inside their peak memory, the same for every trainer, "
                           "which pulls their C3 ratios toward 1. The scaling studies' C3 rows do not have this "
                           "offset."))
        b += budget_blocks(records)

        b += rivals_blocks(records, [v for v in verdicts if v.claim == RIVALS])
        b += measured_blocks(records)
        ranked = equation_records(records)
        b += profile_blocks(profiles(ranked), fig_dir, measured=len(ranked) < len(records))
        b.append(("h2", "Per system and regime"))
        b.append(("fig", figures.curves_grid(by_cell, fig_dir / "curves.png"),
                  "The common metric against training time: median over seeds, band min to max; dashed: the "
                  "system's target. A panel per system and regime; every trainer the same colour and line in "
                  "every figure."))
        b.append(("fig", figures.measure_grid(by_cell, measures.test_mse, "test MSE", fig_dir / "test-mse.png",
                                              threshold=MSE_CLAIM,
                                              threshold_label=f"{MSE_CLAIM:g}x spectral's median test MSE (C2)"),
                  "Test MSE (state units²) of rollouts from held-out initial states over the test horizon: each "
                  "seed a black dot, the median a large marker, the seed range a line. A baseline above the dashed "
                  f"line is at least {MSE_CLAIM:g}x worse than spectral's median (C2 is decided on paired per-seed "
                  "ratios)."))
        roll = figures.rollout_grid(by_cell, fig_dir / "rollouts.png")
        if roll:
            b.append(("fig", roll, "The first state of a held-out trajectory: its samples (circles) and each "
                                   "trainer's rollout from its initial state, every trainer at the seed named. "
                                   "Shaded: the training span; ticks along the bottom: the training observation "
                                   "times."))
        b.append(("p", f"Medians over seeds, the spread (min to max over seeds) in brackets; '{NOT_REACHED}' where "
                       "a run never reached the target (in a median, it counts as later than any time). A time to "
                       "target is the first crossing; the sustained time is from the first evaluation after which "
                       "the metric stays at or below the target to the end of the budget."))
        b += [("details", f"{system} ({regime}): {len(per)} trainers, "
                          f"{sum(len(rs) for rs in per.values())} runs", [cell_table(per)])
              for (system, regime), per in by_cell.items()]

    b += study_blocks(studied, verdicts, fig_dir)
    if decided.since is not None:
        b += change_blocks(decided.since, decided)
    b.append(("h2", "Every verdict"))
    bases = baselines_in(verdicts)
    b.append(("details", f"{len(verdicts)} verdicts: the median per-seed ratio, its range and n against each "
                         "baseline, and why", [
        ("table", ["claim", "system", "regime", "verdict", *[f"vs {x}" for x in bases], "why"],
         [[v.claim, v.system, v.regime, f"{MARK[v.verdict]} **{v.shown}**",
           *[str(v.ratios[x]) if x in v.ratios else "n/a" for x in bases], v.why]
          for v in sorted(verdicts, key=lambda v: list(CLAIMS).index(v.cell[0]))]),
        ("p", "Ratios are spectral's advantage (baseline / spectral), paired by seed: the median of the "
              "per-seed ratios, their min to max and the number of seeds n. Time to target (the first crossing) "
              f"for C1, the sustained time for {KEPT}, test MSE (of the best checkpoint) for C2, peak memory (setup + "
              "training peak) for C3, network evaluations per iteration for C4; above 1 favours spectral. '> x' is "
              "a lower bound: on some seed the baseline never reached the target within its budget. "
              f"'{USELESS}': no trainer's median test NMSE is below {USEFUL_NMSE:g} in that system and regime, so "
              f"C1, {KEPT}, C2 and the rivals compare no ratios there. '{TRAINING_ONLY}': C1 or {KEPT} would hold, but "
              f"spectral's own median test NMSE is at least {USEFUL_NMSE:g} where another trainer's is below: its "
              "speed is to a training target its model does not generalise from, and it is not counted as holding." +
              (f" The {RIVALS} rows are spectral against its rivals (rival / spectral, under 'Against its rivals')."
               if any(v.claim == RIVALS for v in verdicts) else ""))]))
    b.append(("h2", "Settings"))
    rows = []
    for (system, regime), per in by_cell.items():
        for trainer, rs in per.items():
            cfg = record_settings(rs[0], ("system_params",))
            rows.append([system, regime, trainer, ", ".join(str(r.seed) for r in rs),
                         "`" + json.dumps(cfg, sort_keys=True, separators=(",", ":")) + "`"])
    b.append(("details", f"The configuration of each of {len(rows)} (system, regime, trainer) groups",
              [("table", ["system", "regime", "trainer", "seeds", "config"], rows)]))
    failed = [r for r in all_records if r.status not in ("ok", "n/a")]
    not_applicable = [r for r in all_records if r.status == "n/a"]
    if not_applicable:
        b.append(("h2", "Runs a trainer cannot do"))
        b.append(("table", ["system", "regime", "trainer", "seed", "status", "why"],
                  [[r.system, r.regime, r.trainer, str(r.seed), r.status, r.error or ""]
                   for r in sorted(not_applicable, key=lambda r: (r.system, r.trainer, r.seed))]))
    b.append(("h2", "Failed runs"))
    if failed:
        b.append(("details", f"{len(failed)} runs", [
            ("table", ["system", "regime", "trainer", "seed", "status", "error"],
             [[r.system, r.regime, r.trainer, str(r.seed), r.status, r.error or ""]
              for r in sorted(failed, key=lambda r: (r.system, r.trainer, r.seed))])]))
    else:
        b.append(("p", "None."))
    if warnings:
        b.append(("p", "Skipped records: " + "; ".join(warnings)))
    b.append(("h2", "Made with"))
    envs = sorted({json.dumps({k: r.env.get(k) for k in ENV_KEYS}, sort_keys=True) for r in all_records})
    b.append(("table", [k.replace("_", " ") for k in ENV_KEYS],
              [[str(e[k]) for k in ENV_KEYS] for e in map(json.loads, envs)]))
    b += wall_blocks(all_records)
    return b


