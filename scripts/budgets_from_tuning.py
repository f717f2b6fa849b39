"""The paper preset's budgets by its rule, from a tuned-settings file: for round two's commit B (docs/reference.md,
"Round two"), where the budgets are set again from the tuned winners.

Each (system, regime)'s budget is 15x the candidate's tuned median time to target (10x and a margin of 1.5), at
least and at most what the preset allows today (`budget_s_range`: 10 and 45 s); where the candidate did not reach the
target on most tuning seeds (`tuned_time_to_target_s = -1`), the cap. It prints that [budget_s] table, each line
with the times it came from, and for each cell whether the paper preset's budget now (the B the tuning ran at) is at
least the rule's: where it is, the budget can stay, and the tuned settings then run at the budget they were tuned
at. The measured benchmarks keep their preset's one budget; for them the script says whether it is at least 10x the
candidate's tuned time (the rule's floor) or where the cap binds. It writes nothing.

    python scripts/budgets_from_tuning.py [SETTINGS]     (default: specbench/running/presets/tuned.toml)
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

from specbench.core.errors import UsageError
from specbench.registries import candidate
from specbench.running.presets import budget_s_for, budget_s_range, load_preset, read_toml, tuned_entry

MARGIN = 15.0  # 10x, the claim's factor, and a margin of 1.5 for the spread over seeds
RULE = 10.0  # the floor a budget must keep to decide C1


def rule_budget(seconds: float | None, low: float, cap: float) -> float:
    """15x `seconds` (the candidate's tuned median time to target), rounded up to a whole 5 s, within [low, cap];
    the cap where it has none."""
    if seconds is None or seconds < 0:
        return cap
    return min(cap, max(low, 5 * math.ceil(MARGIN * seconds / 5)))


def tuned_time(settings: dict, system: str, regime: str, trainer: str) -> float | None:
    """The tuned median time to target of the entry the presets would read (`tuned_entry`); None without one."""
    entry = tuned_entry(settings, system, regime, trainer)
    return None if entry is None else entry.get("tuned_time_to_target_s")


def _time_said(seconds: float | None) -> str:
    return "not tuned" if seconds is None else "not reached" if seconds < 0 else f"{seconds:.3g} s"


def lines(settings: dict) -> list[str]:
    paper, measured, who = load_preset("paper"), load_preset("measured"), candidate()
    low, cap = budget_s_range(paper)
    out = ["[budget_s]  # training seconds per run by system and regime; default: a system the table does not name",
           f"default = {cap:g}"]
    times = {(s, r): tuned_time(settings, s, r, who) for s in paper.systems for r in paper.regimes}
    rules = {cell: rule_budget(t, low, cap) for cell, t in times.items()}
    for system in paper.systems:
        budgets = ", ".join(f"{regime} = {rules[system, regime]:g}" for regime in paper.regimes)
        said = ", ".join(f"{_time_said(times[system, regime])} ({regime})" for regime in paper.regimes)
        out.append(f"{system} = {{{budgets}}}  # {who}'s tuned median time to target: {said}")
    out.append("# the paper preset's budgets now (the tuning's B): each keeps the rule where it is at least the rule's")
    for (system, regime), rule in rules.items():
        now = budget_s_for(paper, system, regime)
        out.append(f"#   {system} {regime}: budget {now:g} s, the rule's {rule:g} s: "
                   + ("keeps the rule" if now >= rule else "below the rule"))
    out.append(f"# the measured benchmarks (preset measured, one budget each): {who}'s tuned time to target, 10x it")
    for system in measured.systems:
        for regime in measured.regimes:
            t, budget = tuned_time(settings, system, regime, who), budget_s_for(measured, system, regime)
            verdict = ("not tuned: no entry for it" if t is None else
                       "the cap binds: not reached in tuning" if t < 0 else
                       f"{RULE:g}x is {RULE * t:.3g} s: " + ("the budget keeps the rule" if budget >= RULE * t
                                                            else "the cap binds"))
            out.append(f"#   {system} {regime}: budget {budget:g} s; {verdict}")
    return out


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "specbench/running/presets/tuned.toml"
    try:
        print("\n".join(lines(read_toml(path))))
    except UsageError as exc:
        print(f"budgets_from_tuning: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
