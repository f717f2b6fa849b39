"""The report's first screen: the verdict board (claims x (system, regime)) and the summary made from it.

Pure functions of the verdicts (specbench.claims.verdicts and specbench.claims.study_verdicts): the board places each
verdict in one cell, the summary counts them, so neither can say something the verdicts do not.
"""
from __future__ import annotations

from dataclasses import dataclass

from specbench.claims.verdicts import CLAIMS, KEPT, OUTCOMES, Verdict
from specbench.registries import measured_systems


@dataclass(frozen=True)
class Board:
    """rows: (system, regime of the runs), sorted; cells: (column, system, regime) -> the verdicts there, in the
    order they were made. `unplaced`: column -> verdicts that belong to no system (a study not run), shown in every
    empty cell of their column."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, str], ...]
    cells: dict
    unplaced: dict

    def at(self, column: str, system: str, regime: str) -> list[Verdict]:
        """The verdicts in a cell; an empty cell is "not measured" (rendered from `unplaced` where a reason is
        known)."""
        return self.cells.get((column, system, regime), [])


def board(verdicts: list[Verdict]) -> Board:
    """The verdicts placed on the board: a column per claim of the paper, and per other claim some verdict decides
    (the rivals, where rivals ran), in CLAIMS order."""
    cells: dict = {}
    unplaced: dict = {}
    for v in verdicts:
        column, system, regime = v.cell
        if system == "-":
            unplaced.setdefault(column, []).append(v)
        else:
            cells.setdefault(v.cell, []).append(v)
    rows = tuple(sorted({(s, g) for _, s, g in cells}))
    decided = {column for column, _, _ in cells} | set(unplaced)
    return Board(tuple(c for c, claim in CLAIMS.items() if claim.from_paper or c in decided), rows, cells, unplaced)


def decided(verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts that decide their claim (it holds or fails there): what any sentence about decided claims counts,
    so the prose says what the board shows."""
    return [v for v in verdicts if v.verdict in ("holds", "fails")]


def place(v: Verdict) -> str:
    """Where a verdict was made, in a few words: 'lotka-volterra dense [horizon, whole]'."""
    _, system, regime = v.cell
    return f"{system} {regime}" + (f" [{v.label}]" if v.label else "")


def tally(vs: list[Verdict]) -> str:
    """'holds in 1 of 4 (a), fails in 3 (b, c, d)': each verdict's count, naming the places when at most three. The
    measured benchmarks are counted apart, after the systems made from equations ('...; on the measured benchmarks:
    fails in 1 of 2 (...)'), so a count over the equation systems reads the same with or without them."""
    if not vs:
        return "not measured"
    if all(v.system == "-" for v in vs):
        return "not measured: " + vs[0].why.split(":")[0]
    placed = [v for v in vs if v.system != "-"]
    made, real = split_measured(placed)
    if real and made:
        return f"{counts(made)}; on the measured benchmarks: {counts(real)}"
    return counts(placed)


def equation_records(records: list) -> list:
    """The records of the systems made from equations, where any are among `records`, else all of them: what the
    performance profiles rank. The measured benchmarks are placed among their published results in a section of
    their own; ranked with the equation systems, the trainers that cannot learn from their hidden states ("n/a")
    would count as never reaching the target there."""
    made, _ = split_measured(records)
    return made or list(records)


def split_measured(items: list) -> tuple[list, list]:
    """`items` (verdicts or records: anything with a `system`) split in two: those of the systems made from
    equations, and those of the measured benchmarks (`registries.measured_systems`)."""
    measured = set(measured_systems())
    return [x for x in items if x.system not in measured], [x for x in items if x.system in measured]


def counts(placed: list[Verdict]) -> str:
    """Each verdict's count among `placed`, the first 'of' all of them, naming the places when at most three."""
    parts = []
    for verdict in [w for v in OUTCOMES for w in (v, f"{v} (indicative)")]:
        here = [place(v) for v in placed if v.shown == verdict]
        if not here:
            continue
        text = f"{verdict} in {len(here)}" + (f" of {len(placed)}" if not parts else "")
        parts.append(text + (f" ({', '.join(here)})" if len(here) <= 3 else ""))
    return ", ".join(parts)


# The summary's lines, one per claim of the paper: the board's columns each counts, and how it names them.
SUMMARY = (("C1", ("C1",), (KEPT,)), ("C2", ("C2",), ("low data",)), ("C3", ("C3",), ("C3 at scale",)),
           ("C4", ("C4",), ()), ("C5", ("C5",), ()))


def summary(verdicts: list[Verdict]) -> list[str]:
    """Five plain lines, one per claim, counting the verdicts on the board (C1 kept with C1, the low-data claim with
    C2, C3 at scale with C3; a claim beyond the paper only where some verdict decides it), then a line for each
    column beyond them that some verdict decides (the rivals)."""
    by_column: dict[str, list[Verdict]] = {c: [] for c in CLAIMS}
    for v in verdicts:
        by_column[v.cell[0]].append(v)
    lines = []
    for claim, main, more in SUMMARY:
        text = f"**{claim} {CLAIMS[claim].text.split(':')[0]}**: {tally([v for c in main for v in by_column[c]])}"
        for column in more:
            if CLAIMS[column].from_paper or by_column[column]:
                text += f"; {column}: {tally(by_column[column])}"
        lines.append(text + ".")
    counted = {c for _, main, more in SUMMARY for c in (*main, *more)}
    lines += [f"**{column}** ({CLAIMS[column].text.split(':')[0]}): {tally(by_column[column])}."
              for column in CLAIMS if column not in counted and by_column[column]]
    return lines
