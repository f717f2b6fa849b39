"""`specbench report DIR`: report.md, a self-contained report.html and PNG figures from run records.

The report is built once as a list of blocks (headings, paragraphs, tables, figures) and rendered twice, so the
Markdown and the HTML cannot disagree. Tables depend only on the records: regenerating from the same records
gives the same tables, byte for byte.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from specbench import measures
from specbench.errors import UsageError
from specbench.report import figures
from specbench.report.studies import study_blocks, study_verdicts
from specbench.report.verdicts import CLAIMS, baselines_in, claims, fmt, group, median, trainer_order
from specbench.results import load_studies, load_sweep, write_text_atomic


def write_report(records_dir: Path | str, out_dir: Path | str | None = None,
                 studies: list[Path] | tuple = ()) -> tuple[Path, Path]:
    """Write report.md, report.html and figures/*.png under out_dir (default: records_dir). Records with a
    `study` (in records_dir or in the `studies` directories) are drawn as scaling studies and decide C3-C5.
    Every file is written atomically (temporary file, then rename)."""
    records, warnings = load_sweep(records_dir)
    for directory in studies:
        more, more_warnings = load_studies(directory)
        records, warnings = records + more, warnings + more_warnings
    out_dir = Path(out_dir or records_dir)
    try:
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write to {out_dir}: {exc.strerror}") from None
    blocks = build(records, out_dir, warnings, sources(records_dir, studies))
    md, page = out_dir / "report.md", out_dir / "report.html"
    write_text_atomic(md, render_markdown(blocks, out_dir))
    write_text_atomic(page, render_html(blocks))
    return md, page


def markdown_tables_only(records_dir: Path | str, out_dir: Path | str, studies=()) -> str:
    """The Markdown report as `write_report` would write it, without drawing a figure (their files are only
    named): what the committed-reports test compares, in seconds rather than minutes."""
    records, warnings = load_sweep(records_dir)
    for directory in studies:
        more, more_warnings = load_studies(directory)
        records, warnings = records + more, warnings + more_warnings
    with figures.drawing(False):
        return render_markdown(build(records, Path(out_dir), warnings, sources(records_dir, studies)),
                               Path(out_dir))


def sources(records_dir, studies) -> str:
    """The command that regenerates the report, from the directories it read (as given)."""
    parts = ["specbench report", Path(records_dir).as_posix()] + \
        [f"--studies {Path(d).as_posix()}" for d in studies]
    return " ".join(parts)


def commits(records: list[dict]) -> str:
    """The commit(s) the records were made at: one, or each with its count of runs."""
    counts: dict[str, int] = {}
    for r in records:
        c = r["env"].get("git_commit") or "unknown"
        counts[c] = counts.get(c, 0) + 1
    if len(counts) == 1:
        return f"every record was made at commit {next(iter(counts))}"
    return "records were made at commits " + ", ".join(f"{c} ({n} runs)" for c, n in sorted(counts.items()))


def build(all_records: list[dict], out_dir: Path, warnings: list[str], command: str = "") -> list[tuple]:
    records = [r for r in all_records if not r.get("study")]
    studied = [r for r in all_records if r.get("study")]
    groups = group(records)
    verdicts = claims(records) + study_verdicts(studied)
    bases = baselines_in(verdicts)
    b: list[tuple] = [("h1", "specbench: SNODE's claims against backprop and adjoint baselines")]
    b.append(("p", f"Made from {len(all_records)} run records; {commits(all_records)}." +
                   (f" Regenerate with `{command}`." if command else "")))
    if records:
        b.append(("p", f"{len(records)} runs: {len({r['system'] for r in records})} systems, "
                       f"{len({r['trainer'] for r in records})} trainers, regimes "
                       f"{', '.join(sorted({r['regime'] for r in records}))}, seeds "
                       f"{', '.join(map(str, sorted({r['seed'] for r in records})))}. Medians over seeds; spread "
                       "(min to max over seeds) in brackets. The common metric is the normalised MSE of rollouts from "
                       "the training initial states against the training data, the same for every trainer."))
    if studied:
        names = sorted({r["study"]["name"] for r in studied})
        b.append(("p", f"{len(studied)} runs of the scaling studies: {', '.join(names)}."))
    b.append(("h2", "Claims"))
    b.append(("table", ["claim", "system", "regime", "verdict", *[f"vs {x}" for x in bases], "why"],
              [[v.claim, v.system, v.regime, f"**{v.verdict}**",
                *[str(v.ratios[x]) if x in v.ratios else "-" for x in bases], v.why] for v in verdicts]))
    b.append(("p", "Ratios are spectral's advantage (baseline / spectral), paired by seed: the median of the "
                   "per-seed ratios, their min to max and the number of seeds n. Time to target (sustained: from "
                   "the first evaluation after which the metric stays at or below the target to the end of the "
                   "budget) for C1, test MSE for C2, peak memory (setup + training peak) for C3, network "
                   "evaluations per iteration for C4; above 1 favours spectral. '> x' is a lower bound: on some "
                   "seed the baseline never reached the target within its budget. " +
                   "; ".join(f"{k}: {v}" for k, v in CLAIMS.items()) + "."))
    if any("setup_memory_bytes" not in r for r in records):
        b.append(("p", "Some runs predate the memory warm-up (their records have no setup_memory_bytes): torch's "
                       "one-off allocations are inside their peak memory, the same for every trainer, which pulls "
                       "their C3 ratios toward 1. The scaling studies' C3 rows do not have this offset."))

    for system, regime in sorted({(s, g) for s, g, _ in groups}):
        per = {t: groups[(system, regime, t)] for t in sorted({t for s, g, t in groups if (s, g) == (system, regime)},
                                                               key=trainer_order)}
        target = next(iter(per.values()))[0]["target_loss"]
        stem = f"{system}-{regime}"
        b.append(("h2", f"{system} ({regime})"))
        b.append(("table", ["trainer", "runs ok", "time to 3x target (s)", "time to target (s)",
                            "first crossing of target (s)", "time to target/3 (s)", "final metric", "test MSE",
                            "test NMSE", "peak memory (MiB)", "ms / iteration"],
                  [[t, f"{sum(r['status'] == 'ok' for r in rs)}/{len(rs)}",
                    *[spread([measures.time_to_target(r, k) for r in rs]) for k in target_keys(rs[0])[:2]],
                    spread([measures.first_time_to_target(r) for r in rs]),
                    spread([measures.time_to_target(r, target_keys(rs[0])[2]) for r in rs]),
                    spread([r["final_train_loss"] for r in rs]), spread([measures.test_mse(r) for r in rs]),
                    spread([r["test_nmse"] for r in rs]),
                    spread([_scaled(measures.peak_memory(r), 2 ** -20) for r in rs]),
                    spread([_scaled(measures.time_per_iteration(r), 1e3) for r in rs])]
                   for t, rs in per.items()]))
        fig_dir = out_dir / "figures"
        b.append(("fig", figures.learning_curves(per, target, f"{system} ({regime}): training",
                                                 fig_dir / f"{stem}-curves.png"),
                  f"Common metric against training time (median over seeds, band: min-max); dashed: target {target:g}."))
        b.append(("fig", figures.per_trainer(per, measures.test_mse, "test MSE (state units²)",
                                             f"{system} ({regime}): test MSE", fig_dir / f"{stem}-test-mse.png"),
                  "Test MSE of rollouts from held-out initial states over the test horizon (median, seed range)."))
        b.append(("fig", figures.per_trainer(per, measures.peak_memory, "peak memory (MiB)",
                                             f"{system} ({regime}): peak memory", fig_dir / f"{stem}-memory.png",
                                             scale=2 ** -20, log=False),
                  "Peak memory: what the trainer kept at setup plus its peak growth during training (RSS on CPU, "
                  "allocator on GPU)."))
        roll = figures.rollout(per, f"{system} ({regime}): first test trajectory", fig_dir / f"{stem}-rollout.png")
        if roll:
            b.append(("fig", roll, "A held-out trajectory (black) and each trainer's rollout from its initial state."))

    b += study_blocks(studied, out_dir / "figures")
    b.append(("h2", "Settings of every run"))
    rows = []
    for (system, regime, trainer), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                                trainer_order(kv[0][2]))):
        cfg = {k: v for k, v in rs[0]["config"].items() if k not in ("env", "system_params", "data", "cadence")}
        rows.append([system, regime, trainer, ", ".join(str(r["seed"]) for r in rs),
                     "`" + json.dumps(cfg, sort_keys=True, separators=(",", ":")) + "`"])
    b.append(("table", ["system", "regime", "trainer", "seeds", "config"], rows))
    failed = [r for r in all_records if r["status"] != "ok"]
    b.append(("h2", "Failed, diverged or timed-out runs"))
    if failed:
        b.append(("table", ["system", "regime", "trainer", "seed", "status", "error"],
                  [[r["system"], r["regime"], r["trainer"], str(r["seed"]), r["status"], r["error"] or ""]
                   for r in sorted(failed, key=lambda r: (r["system"], r["trainer"], r["seed"]))]))
    else:
        b.append(("p", "None."))
    if warnings:
        b.append(("p", "Skipped records: " + "; ".join(warnings)))
    b.append(("h2", "Made with"))
    envs = sorted({json.dumps({k: r["env"].get(k) for k in ("python", "torch", "torchdiffeq", "numpy", "threads",
                                                              "device", "gpu", "cpu", "cores", "git_commit")},
                              sort_keys=True) for r in all_records})
    b.append(("table", ["python", "torch", "torchdiffeq", "numpy", "threads", "device", "gpu", "cpu", "cores",
                        "git commit"],
              [[str(e[k]) for k in ("python", "torch", "torchdiffeq", "numpy", "threads", "device", "gpu", "cpu",
                                    "cores", "git_commit")] for e in map(json.loads, envs)]))
    return b


def target_keys(record: dict) -> list[str]:
    """The record's target keys, loosest first (3x, 1x, 1/3x the system's target)."""
    return sorted(record["times_to_targets"], key=float, reverse=True)


NOT_REACHED = "not reached"


def _scaled(x, k):
    return None if x is None else x * k


def spread(values) -> str:
    """'median (min to max)' over seeds; None counts as not reached / no value (+inf in the median), and is
    written as one symbol, NOT_REACHED, wherever it decides what is shown."""
    present = [v for v in values if v is not None]
    if not present:
        return NOT_REACHED
    m = median(values)
    text = fmt(m) if m != float("inf") else NOT_REACHED
    if len(values) > 1:
        hi = fmt(max(present)) if len(present) == len(values) else NOT_REACHED
        text += f" ({fmt(min(present))} to {hi})"
    return text


def render_markdown(blocks, out_dir: Path) -> str:
    lines = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2"):
            lines += [("#" if kind == "h1" else "##") + " " + rest[0], ""]
        elif kind == "p":
            lines += [rest[0], ""]
        elif kind == "table":
            head, rows = rest
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
            lines.append("")
        elif kind == "fig":
            path, caption = rest
            lines += [f"![{caption}]({path.relative_to(out_dir).as_posix()})", "", f"*{caption}*", ""]
    return "\n".join(lines)


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#212529}
table{border-collapse:collapse;margin:1em 0;font-size:.85em}td,th{border:1px solid #ced4da;padding:.3em .5em;
vertical-align:top}th{background:#f1f3f5}code{font-size:.85em;word-break:break-all}figure{margin:1em 0}
img{max-width:100%}figcaption{font-size:.85em;color:#495057}"""


def _inline(text: str) -> str:
    out = html.escape(text)
    for mark, tag in (("**", "strong"), ("`", "code")):
        parts = out.split(mark)
        out = "".join(p if i % 2 == 0 else f"<{tag}>{p}</{tag}>" for i, p in enumerate(parts))
    return out


def render_html(blocks) -> str:
    body = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(rest[0])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(rest[0])}</p>")
        elif kind == "table":
            head, rows = rest
            body.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" +
                        "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows) +
                        "</table>")
        elif kind == "fig":
            path, caption = rest
            data = base64.b64encode(path.read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    title = html.escape(blocks[0][1])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
