"""The report's two renderings of one list of blocks: Markdown (report.md) and a self-contained HTML page
(report.html, its CSS and figures inline). Both walk the same blocks, so they cannot disagree.

Blocks are tuples: ("h1"|"h2"|"p", text), ("toc",), ("table", head, rows), ("board", Board), ("columns", [blocks,
...]), ("box", title, items), ("details", summary, blocks), ("fig", png path, caption).
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from specbench.claims.verdicts import CLAIMS, MARK, NOT_REACHED, OUTCOMES, TRAINING_ONLY, USELESS
from specbench.report import figures


def slug(text: str) -> str:
    """A heading's anchor as GitHub makes it (lower case, punctuation dropped, spaces to hyphens), so the table of
    contents links the same way in report.md on GitHub and in report.html."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def _sections(blocks) -> list[str]:
    return [rest[0] for kind, *rest in blocks if kind == "h2"]


# The board's verdicts in Markdown, where a cell cannot be coloured: a coloured mark that differs in shape too.
EMOJI = {"holds": "✅", TRAINING_ONLY: "🟠", "fails": "❌", "inconclusive": "🟡", USELESS: "🚫", "not measured": "➖"}


def _board_cells(bd, column: str) -> list[list[tuple[str, str, str]]]:
    """Each board row's cell in `column` as (verdict, label, reason, indicative) chips; an empty cell is one "not
    measured" chip (with the reason where a study was not run)."""
    out = []
    for system, regime in bd.rows:
        here = bd.at(column, system, regime)
        if here:
            out.append([(v.verdict, v.label, v.why + (f" (indicative: {v.indicative})" if v.indicative else ""),
                         bool(v.indicative)) for v in here])
        else:
            why = "; ".join(v.why for v in bd.unplaced.get(column, [])) or "no runs decide it here"
            out.append([("not measured", "", why, False)])
    return out


def board_legend(marks: dict[str, str]) -> str:
    """The line above the board, with the marks of the output it is written in."""
    return ("**Verdicts**: " + ", ".join(f"{marks[v]} {v}" for v in OUTCOMES) + ". A row per claim, a column per "
            "system and regime; the reasons are under 'Every verdict' (and in each cell's tooltip in report.html).")


def markdown_table(head: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines (a '|' inside a cell escaped)."""
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]]


def render_markdown(blocks, out_dir: Path) -> str:
    return "\n".join(_markdown(blocks, out_dir, _sections(blocks)))


def _markdown(blocks, out_dir: Path, sections: list[str]) -> list[str]:
    lines = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2"):
            lines += [("#" if kind == "h1" else "##") + " " + rest[0], ""]
        elif kind == "p":
            lines += [rest[0], ""]
        elif kind == "toc":
            lines += ["**Contents:** " + " · ".join(f"[{t}](#{slug(t)})" for t in sections), ""]
        elif kind == "table":
            lines += [*markdown_table(*rest), ""]
        elif kind == "board":
            bd = rest[0]
            lines += [board_legend(EMOJI), "", "| claim | " + " | ".join(f"{s} {g}" for s, g in bd.rows) + " |",
                      "|---|" + "---|" * len(bd.rows)]
            for column in bd.columns:
                cells = ["<br>".join(EMOJI[v] + (f" {label}" if label else "" if v == "not measured" else f" {v}")
                                     + (" (indicative)" if indicative else "")
                                     for v, label, _, indicative in chips) for chips in _board_cells(bd, column)]
                lines.append(f"| **{column}** {CLAIMS[column].short} | " + " | ".join(cells) + " |")
            lines.append("")
        elif kind == "columns":
            for part in rest[0]:
                lines += _markdown(part, out_dir, sections)
        elif kind == "box":
            title, items = rest
            lines += [f"**{title}**", "", *[f"- {item}" for item in items], ""]
        elif kind == "details":
            summary_, inner = rest
            lines += [f"<details><summary>{html.escape(summary_)}</summary>", "",
                      *_markdown(inner, out_dir, sections), "</details>", ""]
        elif kind == "fig":
            path, caption = rest
            lines += [f"![{caption}]({path.relative_to(out_dir).as_posix()})", "", f"*{caption}*", ""]
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    return lines


CSS = """body{font-family:system-ui,sans-serif;max-width:1340px;margin:.6em auto;padding:0 1em;color:#212529;
font-size:15px;line-height:1.4}h1{font-size:1.45em;margin:.2em 0}h2{font-size:1.2em;margin:1.4em 0 .5em;
border-bottom:1px solid #dee2e6}h3{font-size:1em;margin:0 0 .3em}p{margin:.45em 0}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}td,th{border:1px solid #ced4da;padding:.25em .45em;
vertical-align:top}th{background:#f1f3f5}td.num{white-space:nowrap;text-align:right}
code{font-size:.85em;word-break:break-all}figure{margin:.6em 0}img{max-width:100%;height:auto;display:block}
figcaption{font-size:.82em;color:#495057}nav.toc{font-size:.88em;margin:.3em 0 .6em;color:#495057}
nav.toc a{color:#1864ab;text-decoration:none;margin-right:.2em}
.cols{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1.2em;align-items:start}
.box{border:1px solid #dee2e6;border-radius:6px;padding:.45em .8em;margin:.5em 0;background:#f8f9fa;
font-size:.9em}.box ul{margin:0;padding-left:1.1em}.box li{margin:.15em 0}
details{margin:.3em 0}summary{cursor:pointer;color:#1864ab;font-size:.92em}
table.board{width:100%;table-layout:fixed;font-size:.8em;margin:.2em 0;line-height:1.25}
table.board th{font-weight:600;text-align:center;padding:.2em}table.board th.claim{text-align:left;width:16.5em}
table.board th.claim small{display:block;font-weight:400;color:#495057}table.board td{padding:2px}
.v{display:block;border-radius:3px;padding:1px 4px;margin:1px 0;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis;font-weight:600}.v small{font-weight:400;font-size:.92em;white-space:normal}
.v-holds{background:#b2f2bb;color:#1b4332}.v-holds-on-training-loss-only{background:#ffd8a8;color:#5c3000}
.v-fails{background:#ffa8a8;color:#5c0a0a}
.v-inconclusive{background:#ffec99;color:#5c3c00}.v-no-useful-model{background:#ced4da;color:#212529}
.v-not-measured{color:#adb5bd;text-align:center}.v.indicative{opacity:.65;border:1px dashed #495057}
p.legend{font-size:.8em;color:#495057;margin:.1em 0 .4em}"""

_NUMERIC = re.compile(r"^[>\s\d.e+\-x(),=]*$")


def _numeric(cell: str) -> bool:
    """A number, a ratio or a 'median (min to max)' spread: kept on one line."""
    bare = cell.replace(NOT_REACHED, "").replace("n/a", "").replace(" to ", " ").replace("n=", "")
    return bool(cell) and any(ch.isdigit() or ch == "/" for ch in cell) and bool(_NUMERIC.match(bare.replace("/", "")))


def _inline(text: str) -> str:
    out = html.escape(text)
    for mark, tag in (("**", "strong"), ("`", "code")):
        parts = out.split(mark)
        out = "".join(p if i % 2 == 0 else f"<{tag}>{p}</{tag}>" for i, p in enumerate(parts))
    return out


def render_html(blocks) -> str:
    body = _html(blocks, _sections(blocks))
    title = html.escape(blocks[0][1])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _html(blocks, sections: list[str]) -> list[str]:
    body = []
    for kind, *rest in blocks:
        if kind == "h1":
            body.append(f"<h1>{html.escape(rest[0])}</h1>")
        elif kind == "h2":
            body.append(f'<h2 id="{slug(rest[0])}">{html.escape(rest[0])}</h2>')
        elif kind == "p":
            body.append(f"<p>{_inline(rest[0])}</p>")
        elif kind == "toc":
            body.append('<nav class="toc"><strong>Contents:</strong> ' +
                        " · ".join(f'<a href="#{slug(t)}">{html.escape(t)}</a>' for t in sections) + "</nav>")
        elif kind == "table":
            head, rows = rest
            body.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" +
                        "".join("<tr>" + "".join(f'<td class="num">{_inline(c)}</td>' if _numeric(c) else
                                                 f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows) +
                        "</table>")
        elif kind == "board":
            body.append(_board_html(rest[0]))
        elif kind == "columns":
            body.append('<div class="cols">' + "".join("<div>" + "\n".join(_html(part, sections)) + "</div>"
                                                       for part in rest[0]) + "</div>")
        elif kind == "box":
            title, items = rest
            body.append(f'<div class="box"><h3>{html.escape(title)}</h3><ul>' +
                        "".join(f"<li>{_inline(item)}</li>" for item in items) + "</ul></div>")
        elif kind == "details":
            summary_, inner = rest
            body.append(f"<details><summary>{html.escape(summary_)}</summary>\n" + "\n".join(_html(inner, sections))
                        + "\n</details>")
        elif kind == "fig":
            path, caption = rest
            png = path.read_bytes()
            width = int.from_bytes(png[16:20], "big") * 96 // figures.DPI  # the IHDR width, at 96 px per inch
            body.append(f'<figure><img style="width:{width}px" alt="{html.escape(caption)}" '
                        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    return body


def _board_html(bd) -> str:
    systems = list(dict.fromkeys(s for s, _ in bd.rows))
    head = ('<tr><th class="claim" rowspan="2">claim</th>' +
            "".join(f'<th colspan="{sum(s == x for x, _ in bd.rows)}">{html.escape(s)}</th>' for s in systems) +
            "</tr><tr>" + "".join(f"<th>{html.escape(g)}</th>" for _, g in bd.rows) + "</tr>")
    rows = []
    for column in bd.columns:
        cells = []
        for chips in _board_cells(bd, column):
            cells.append("<td>" + "".join(
                f'<span class="v v-{v.replace(" ", "-")}{" indicative" if indicative else ""}" '
                f'title="{html.escape(why, quote=True)}">{MARK[v]} ' +
                (f"<small>{html.escape(label)}</small>" if label else "" if v == "not measured" else v) +
                (" <small>(indicative)</small>" if indicative else "") + "</span>"
                for v, label, why, indicative in chips) + "</td>")
        rows.append(f'<tr><th class="claim">{html.escape(column)}<small>{html.escape(CLAIMS[column].short)}</small>'
                    "</th>" + "".join(cells) + "</tr>")
    return (f'<p class="legend">{_inline(board_legend(MARK))}</p><table class="board">{head}' + "".join(rows) +
            "</table>")
