"""The report's sections as blocks (specbench.report.render draws them): the setup, the budgets, the rivals, the
performance profiles, the per-cell tables, the overview figures, where the wall time went, and the prose that says
how each is read. Each is a function of the records and verdicts it is given."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from specbench.claims.profiles import R_MAX, Profiles
from specbench.claims.study_verdicts import regimes_relabelled
from specbench.claims.verdicts import (KEPT, MARK, MSE_CLAIM, NOT_REACHED, RIVAL_MEASURES, RIVALS_CLAIM, SPEEDUP_CLAIM,
                                       THRESHOLDS, USEFUL_NMSE, USELESS, Budget, Verdict, budget_checks, fmt, median,
                                       reference_seeds, seed_ratios_by_cell, versus, with_role)
from specbench.core import measures
from specbench.core.records import Record, record_settings
from specbench.report import figures
from specbench.report.board import decided, place
from specbench.running.presets import REFERENCE_PRESET, budget_s_range, load_preset
from specbench.systems.measured import PUBLISHED


def commit_counts(records: list[Record]) -> dict[str, int]:
    """The commit(s) the records were made at (`env.git_commit`, as specbench.running.machine writes it), each with its
    count of runs, sorted."""
    counts: dict[str, int] = {}
    for r in records:
        c = r.env.get("git_commit") or "unknown"
        counts[c] = counts.get(c, 0) + 1
    return dict(sorted(counts.items()))


def commits(records: list[Record]) -> str:
    """The commit line of the setup: 'every record at commit abc1234', or each commit with its count of runs (the
    headline runs and the scaling studies apart where both are there), so a reader sees whether the records were made
    at one commit."""
    headline, studied = [r for r in records if not r.study], [r for r in records if r.study]
    parts = [(headline, "headline record"), (studied, "study record")] if headline and studied else \
        [(records, "record")]
    text = "; ".join(_commits(rs, what) for rs, what in parts)
    if any(c.endswith("-dirty") for c in commit_counts(records)):
        text += " ('-dirty': the package's files differed from that commit)"
    return text


def _commits(records: list[Record], what: str) -> str:
    counts = commit_counts(records)
    if len(counts) == 1:
        return f"every {what} at commit {next(iter(counts))}"
    return f"{what}s made at {len(counts)} commits: " + \
        ", ".join(f"{c} ({n} run{'' if n == 1 else 's'})" for c, n in counts.items())


WALL_LABELS = {"start": "process start", "data": "data", "warm_up": "warm-up", "training": "training",
               "evaluation": "evaluation", "test_errors": "test errors", "write": "write", measures.LOST: "lost runs"}


def wall_blocks(records: list[Record]) -> list[tuple]:
    """Where each sweep's wall time went (the records' `wall`, summed over its runs): the headline runs and each
    study apart, with the overhead, wall time over the training time bought. Nothing where no record kept it (made
    before records did), so a report of such records says what it always said."""
    sweeps: dict[str, list[Record]] = {"headline runs": [r for r in records if not r.study]}
    for r in records:
        if r.study:
            sweeps.setdefault(f"study {r.study.name}", []).append(r)
    rows = []
    for name, runs in sweeps.items():
        w = measures.wall_time(runs)
        if w.timed:
            rows.append([name, str(w.timed), _seconds(w.budget_s), _seconds(w.total), f"{fmt(w.overhead)}x",
                         *[_seconds(w.parts[part]) for part in WALL_LABELS]])
    if not rows:
        return []
    untimed = [r for r in records if not (r.wall and "total" in r.wall)]
    persistent = [r for r in records if r.env.get("process") == "persistent"]
    return [("p", "Where the runs' wall time went, in seconds summed over each sweep's runs on their workers (the "
                  "records' `wall`): the process's start and imports, the data, the untimed warm-up, training (the "
                  "clock's stretches), the common metric's evaluations, the test errors, and the rest (the record "
                  "written and read back, the process's exit); 'lost runs' is the time of runs that crashed or timed "
                  "out. The overhead is that wall time over the training time bought (the budgets): a sweep on W "
                  "workers takes about overhead x budgets / W." +
                  (f" {count(untimed, 'run')} made before records kept their wall time are left out."
                   if untimed else "") +
                  (f" {count(persistent, 'run')} ran in a persistent worker (torch, the trainers and the "
                   "data loaded once per worker; no memory measured)." if persistent else "")),
            ("table", ["sweep", "runs", "budgets", "wall", "overhead", *WALL_LABELS.values()], rows)]


def _seconds(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


RATIOS = ("Every dot is one seed's ratio baseline / spectral (same seed, same data, same initial weights): above 1 "
          "favours spectral. The black bar is their median, the number the verdict is decided on; an arrow is a "
          "lower bound (the baseline never reached the target, its training seconds over spectral's time). Time to "
          "target is the first crossing: the training seconds at the first evaluation at or below the target; the "
          "model judged for C2 is the best checkpoint by the common metric. "
          f"{KEPT} judges the sustained time by C1's rule: from the first evaluation after which the common metric "
          "stays at or below the target to the end of the budget. The common metric is the normalised MSE of "
          "rollouts from the training initial states against the training data, the same for every trainer. The "
          "low-data figure is C2 in every sampling regime and noise level of the regimes study, decided by the same "
          "rule.")


RIVALS_RULE = (
    "spectral against each rival (a fast-training method the paper did not compare with), paired by seed: the median "
    "of the per-seed ratios rival / spectral of time to target (as C1: a rival that never reached the target gives a "
    "lower bound '> x', its training seconds over spectral's time) and of test MSE (as C2); above 1 favours spectral. "
    f"The comparison **holds** in a system and regime when spectral is at least as fast and at least as accurate as "
    f"every rival (both medians >= {RIVALS_CLAIM:g}x), **fails** when either median is below {RIVALS_CLAIM:g}x "
    "against any rival (or a rival reaches the target and spectral does not), and is **inconclusive** where the "
    f"lower-bound rule leaves it open (a bound below {RIVALS_CLAIM:g}x, neither reaching the target, no seed in "
    f"common); it is **{USELESS}** where no trainer's median test NMSE is below {USEFUL_NMSE:g}.")


def rivals_blocks(records: list[Record], verdicts: list[Verdict]) -> list[tuple]:
    """The section 'Against its rivals': the rivals verdicts with their ratios on both measures against each
    rival, and the rule; nothing where no rival ran."""
    if not verdicts:
        return []
    columns = [versus(rival, m) for rival in with_role(records, "rival") for m in RIVAL_MEASURES]
    return [("h2", "Against its rivals"), ("p", RIVALS_RULE),
            ("table", ["system", "regime", "verdict", *[f"vs {c}" for c in columns], "why"],
             [[v.system, v.regime, f"{MARK[v.verdict]} **{v.shown}**",
               *[str(v.ratios[c]) if c in v.ratios else "n/a" for c in columns], v.why] for v in verdicts])]


BUDGETS_TITLE = "Budgets"


def budget_blocks(records: list[Record]) -> list[tuple]:
    """The section BUDGETS_TITLE: each (system, regime)'s budget B (the median of its records' budgets), spectral's
    median time to target there, and whether B is at least SPEEDUP_CLAIM x that (docs/design.md: budgets must be able to
    decide); where it is not, what budget it would take. Nothing where spectral did not run."""
    checks = budget_checks(records)
    if not checks:
        return []
    short = [f"{s} {g}" for s, g, check in checks if not check.decides]
    cap = budget_s_range(load_preset(REFERENCE_PRESET))[1]  # the longest budget the reference's preset gives
    cells_ = f"{len(checks)} (system, regime) cell{'' if len(checks) == 1 else 's'}"
    return [("h2", BUDGETS_TITLE),
            ("p", f"A budget can decide C1 where it is at least {SPEEDUP_CLAIM:g}x spectral's median time to target "
                  "(the first crossing) there: a baseline then either reaches the target (a measured ratio) or leaves "
                  f"a lower bound of at least {SPEEDUP_CLAIM:g}x. " +
                  (f"It is in {len(checks) - len(short)} of {cells_}; in the other {len(short)} "
                   f"({', '.join(short)}) it is not (a preset caps its budgets to fit its machine time: the `paper` "
                   f"preset at {fmt(cap)} s): a C1 verdict there may be inconclusive for "
                   "want of time (its reason names the budget that would decide it), while a measured ratio under "
                   f"{SPEEDUP_CLAIM:g}x fails whatever the budget." if short else f"It is in each of the {cells_}.")),
            ("table", ["system", "regime", "budget B (s)", "spectral's median time to target (s)",
                       f"{SPEEDUP_CLAIM:g}x that (s)", f"B >= {SPEEDUP_CLAIM:g}x spectral's median"],
             [[s, g, fmt(check.budget_s), *((fmt(check.spectral), fmt(check.needed)) if check.reached else
                                           (NOT_REACHED, "n/a")), _enough(check)] for s, g, check in checks])]


def _enough(check: Budget) -> str:
    """'yes', or what budget it would take."""
    if check.decides:
        return "yes"
    if not check.reached:
        return f"no: spectral did not reach the target within {fmt(check.budget_s)} s"
    return f"no: {SPEEDUP_CLAIM:g}x spectral's median needs {fmt(check.needed)} s"


PROFILES_TITLE = "Which method to use: performance profiles"


def profile_blocks(prof: Profiles, fig_dir: Path, measured: bool = False) -> list[tuple]:
    """The section PROFILES_TITLE: every trainer's performance profile over the (system, regime) cells and its
    score, best first; nothing where fewer than two trainers ran or no cell was solved. `measured`: measured
    benchmarks ran too, and are not among the cells (`board.equation_records`); the caption says so."""
    if not prof.shown:
        return []
    n = len(prof.cells)
    total = n + len(prof.left_out)
    left_out = (f"{len(prof.left_out)} of {total} cells left out: no trainer reached the target "
                f"({', '.join(f'{s} {g}' for s, g in prof.left_out)})." if prof.left_out else
                f"No cell left out: some trainer reached the target in each of the {total}.")
    caption = (f"Performance profiles (Dolan and Moré 2002) over {count(prof.cells, '(system, regime) cell')}: "
               "rho(tau), the fraction of cells in which a trainer's median time to target over seeds is within tau "
               "x the fastest trainer's there (a run that never reached the target counts as never); higher and "
               "further left is better, and at tau = 1 it is the fraction of cells the trainer is fastest in. "
               + left_out + (f" The measured benchmarks are not among the cells: they are placed among their "
                             f"published results in the section \"{MEASURED_TITLE}\"." if measured else ""))
    ranked = sorted(prof.profiles, key=lambda p: -p.area)  # best first; ties keep registry order
    return [("h2", PROFILES_TITLE),
            ("fig", figures.performance_profiles(list(prof.profiles), R_MAX, fig_dir / "profiles.png"), caption),
            ("table", ["trainer", "role", "score (area)", "cells fastest", "cells solved"],
             [[p.trainer, p.role, f"{p.area:.3f}", f"{p.best}/{n}", f"{p.solved}/{n}"] for p in ranked]),
            ("p", f"Score: the area under the profile over log(tau) from tau = 1 to {R_MAX:g}, divided by "
                  f"log({R_MAX:g}), as AlgoPerf scores submissions: 1 when the trainer is the fastest in every cell, 0 "
                  f"when it is never within {R_MAX:g}x the fastest. Cells fastest: ties count for each trainer in "
                  "them. Cells solved: where its median time to target over seeds is reached. A trainer with no runs "
                  "in a cell counts as never reaching the target there.")]


ENV_KEYS = ("python", "torch", "torchdiffeq", "numpy", "threads", "device", "gpu", "cpu", "cores", "git_commit")


def intro(all_records: list[Record], records: list[Record], studied: list[Record], verdicts: list[Verdict]) -> str:
    """One line under the title: what the report was made from; where no run was ok, what the verdicts (the board's)
    decide all the same."""
    parts = []
    if records:
        parts.append(f"{count(records, 'headline run')} ({count({r.system for r in records}, 'system')}, "
                     f"{count({r.trainer for r in records}, 'trainer')})")
    if studied:
        parts.append(f"{count(studied, 'run')} of the scaling studies "
                     f"({', '.join(sorted({r.study.name for r in studied}))})")
    made = f"Made from {' and '.join(parts) or f'{len(all_records)} run records'}."
    if all_records and not any(r.ok for r in all_records):
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(Counter(r.status for r in all_records).items()))
        settled = [f"{v.cell[0]} {v.verdict} in {place(v)}" for v in decided(verdicts)]
        made += f" **No run was ok** ({statuses}): nothing trained to the end of its budget, so " + \
            (f"only what the runs measured before they stopped decides: {', '.join(settled)}" if settled else
             "no claim is decided") + "; the failed runs are listed below."
    return made


def count(things, noun: str) -> str:
    return f"{len(things)} {noun}{'' if len(things) == 1 else 's'}"


def cell_table(per: dict[str, list[Record]]) -> tuple:
    """The per-trainer numbers of one (system, regime): medians over seeds with their spread."""
    return ("table", ["trainer", "runs ok", "time to 3x target (s)", "time to target (s)",
                      "sustained time to target (s)", "time to target/3 (s)", "final metric", "test MSE",
                      "test NMSE", "peak memory (MiB)", "ms / iteration"],
            [[t, f"{sum(r.status == 'ok' for r in rs)}/{len(rs)}",
              *[spread([measures.time_to_target(r, k) for r in rs]) for k in (rs[0].target_keys[3.0],
                                                                               rs[0].target_keys[1.0])],
              spread([measures.sustained_time(r) for r in rs]),
              spread([measures.time_to_target(r, rs[0].target_keys[1 / 3]) for r in rs]),
              spread([r.final_train_loss for r in rs], missing="n/a"),
              spread([measures.test_mse(r) for r in rs], missing="n/a"),
              spread([r.test_nmse for r in rs], missing="n/a"),
              spread([_scaled(measures.peak_memory(r), 2 ** -20) for r in rs], missing="n/a"),
              spread([_scaled(measures.time_per_iteration(r), 1e3) for r in rs], missing="n/a")]
             for t, rs in per.items()])


# Under the board where some verdict is indicative: what that means, and where the decisive verdicts are.
INDICATIVE = (f"**(indicative)**: decided on fewer seeds than the {reference_seeds()} the reference decides on, "
              "so a quick look, not a verdict on the claim: the decisive verdicts are the committed reference's "
              "(`reports/reference/report.md` in the specbench repository, made by `make reference`).")


OVERVIEW = {
    "C1": ("C1 speed: time to target, baseline / spectral",
           "baseline's time to target (first crossing) / spectral's, per seed (log scale)",
           "lower bound: the baseline never reached the target",
           "upper bound: spectral never reached the target"),
    "C2": ("C2 generalisation: test MSE, baseline / spectral", "baseline's test MSE / spectral's, per seed (log scale)",
           None, None),
    "C3": ("C3 memory: peak memory, baseline / spectral", "baseline's peak memory / spectral's, per seed (log scale)",
           None, None),
}


def overview_figure(records: list[Record], verdicts: list, claim: str, fig_dir: Path) -> tuple | None:
    """The dot plot of a headline claim's per-seed ratios in every (system, regime), with its verdicts."""
    ratios = seed_ratios_by_cell(records, claim)
    if not ratios:
        return None
    decided = {(v.system, v.regime): v.verdict for v in verdicts if v.claim == claim and not v.column}
    title, xlabel, lower, upper = OVERVIEW[claim]
    rows = [(f"{s} {g}", decided[(s, g)], per) for (s, g), per in ratios.items()]
    path = figures.seed_ratios(rows, THRESHOLDS[claim], xlabel, title, fig_dir / f"overview-{claim}.png", lower, upper)
    return ("fig", path, f"{title}: one dot per seed, the median as a black bar, the verdict on the right; "
                         f"the claim holds right of the {THRESHOLDS[claim]:g}x line (shaded).")


def low_data_figure(studied: list[Record], verdicts: list, fig_dir: Path) -> tuple | None:
    """The low-data claim's dot plot: C2's per-seed ratios in every cell of the regimes study."""
    cells_ = seed_ratios_by_cell(regimes_relabelled([r for r in studied if r.study.name == "regimes"]), "C2")
    if not cells_:
        return None
    decided = {(v.system, v.regime): v.verdict for v in verdicts if v.column == "low data"}
    rows = [(f"{s} {g.removeprefix('regimes study, ')}", decided[(s, g)], per) for (s, g), per in cells_.items()]
    path = figures.seed_ratios(rows, MSE_CLAIM, "baseline's test MSE / spectral's, per seed (log scale)",
                               "Low data: C2 in the regimes study", fig_dir / "overview-low-data.png")
    return ("fig", path, "The low-data claim: test MSE, baseline / spectral, per seed in each sampling regime and "
                         "noise level of the regimes study; the claim holds right of the "
                         f"{MSE_CLAIM:g}x line (shaded).")


def setup(records: list[Record], command: str = "") -> list[str]:
    """The setup box: machine, threads, workers, budgets, seeds and commit, from the records' env and config, and
    the command that regenerates the report."""
    env = [r.env for r in records]
    machines = sorted({f"{e.get('cpu')} ({e.get('cores')} cores), {e.get('device')}" +
                       (f", {e['gpu']}" if e.get("gpu") else "") for e in env})
    per_run = sorted({measures.budget_s(r) for r in records})
    checks = [check for _, _, check in budget_checks([r for r in records if not r.study])]
    seeds = sorted({r.seed for r in records})
    workers = sorted({str(e["workers"]) for e in env if e.get("workers") is not None})
    return [f"**machine**: {'; '.join(machines)}; **threads per run**: "
            f"{', '.join(map(str, sorted({e.get('threads') for e in env}, key=str)))}; "
            f"**workers**: {', '.join(workers) if workers else 'not recorded'}",
            "**budget per run**: " + (f"{fmt(per_run[0])} s" if len(per_run) == 1 else
                                       f"{fmt(per_run[0])} to {fmt(per_run[-1])} s (by system, regime and study)") +
            (f", at least {SPEEDUP_CLAIM:g}x spectral's median time to target in {sum(c.decides for c in checks)} of "
             f"{len(checks)} (system, regime) cells (see Budgets)" if checks else "") +
            f"; **seeds**: {', '.join(map(str, seeds))} ({len(seeds)})",
            "**versions**: " + "; ".join(sorted({f"python {e.get('python')}, torch {e.get('torch')}, torchdiffeq "
                                                 f"{e.get('torchdiffeq')}, torchode {e.get('torchode', 'n/a')}"
                                                 for e in env})),
            f"**commit**: {commits(records)}"] + \
        ([f"Regenerate with `{command}`."] if command else [])


def _scaled(x, k):
    return None if x is None else x * k


def spread(values, missing: str = NOT_REACHED) -> str:
    """'median (min to max)' over seeds; None counts as not reached (+inf in the median), and is written as one
    symbol, `missing` (NOT_REACHED for times; 'n/a' for a value a failed run does not have), wherever it decides
    what is shown."""
    present = [v for v in values if v is not None]
    if not present:
        return missing
    m = median(values)
    text = fmt(m) if m != float("inf") else missing
    if len(values) > 1:
        hi = fmt(max(present)) if len(present) == len(values) else missing
        text += f" ({fmt(min(present))} to {hi})"
    return text


MEASURED_TITLE = "Measured benchmarks against published results"
FIGURE_NAMES = {"rmse": "test RMSE", "r2": "test R²"}


def measured_blocks(records: list[Record]) -> list[tuple]:
    """The section MEASURED_TITLE: for each measured benchmark with published results (PUBLISHED), each trainer's
    test RMSE and R² of its best checkpoint (median over seeds, the range in brackets), with the model's structure,
    among the published figures, ordered by the benchmark's own figure (RMSE up, R² down). Nothing where no such
    benchmark ran."""
    blocks = []
    for system, published in PUBLISHED.items():
        mine = [r for r in records if r.system == system and r.status != "n/a"]
        if not mine:
            continue
        figure = published[0].figure
        rows = []
        for (trainer, model), rs in by_model(mine).items():
            rmse, r2 = fit_spread([r.test_rmse for r in rs], "rmse"), fit_spread([r.test_r2 for r in rs], "r2")
            rows.append(((rmse if figure == "rmse" else r2)[0],
                         [f"**{trainer}**", model, rmse[1], r2[1],
                          f"{fmt(median([measures.budget_s(r) for r in rs]))} s budget, {len(rs)} seeds",
                          "this run"]))
        for p in published:
            shown = ("> " if p.at_least else "") + fmt(p.value)
            rows.append((p.value, [p.method, "", shown if p.figure == "rmse" else "",
                                   shown if p.figure == "r2" else "",
                                   f"{fmt(p.seconds)} s" if p.seconds is not None else "",
                                   f"{p.source} (published, other hardware)"]))
        rows.sort(key=lambda row: row[0] * (1 if figure == "rmse" else -1))
        blocks.append(("table", ["method", "model", "test RMSE", "test R²", "training", "source"],
                       [row for _, row in rows]))
        blocks.append(("p", f"{system}: ordered by its figure of merit, {FIGURE_NAMES[figure]} of the free-run "
                            "simulation of the test experiment. Ours: the best checkpoint of each run, median over "
                            "seeds (min to max). Published: as their papers give them, from other hardware and "
                            "other budgets, so figures to place ours among, not ratios."))
    return [("h2", MEASURED_TITLE), *blocks] if blocks else []


def by_model(records: list[Record]) -> dict[tuple[str, str], list[Record]]:
    """(trainer, its model: "black box" or "known structure", from the records' system parameter `structure`) ->
    its records, in the order they come."""
    groups: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        structure = r.config.get("system_params", {}).get("structure", "none")
        groups.setdefault((r.trainer, "black box" if structure == "none" else "known structure"), []).append(r)
    return groups


def measured_summary(records: list[Record]) -> tuple[list[str], list[list[str]]]:
    """The measured benchmarks in one table, for the README: a row per trainer and model structure, a column per
    benchmark with published results (PUBLISHED) holding its figure of merit (median over seeds, min to max), and a
    last row with the best published neural-ODE figure of each (from other hardware). Empty where none ran."""
    mine = [r for r in records if r.system in PUBLISHED and r.status != "n/a"]
    systems = [s for s in PUBLISHED if any(r.system == s for r in mine)]
    if not systems:
        return [], []
    head = ["trainer", "model", *[f"{s}: {FIGURE_NAMES[PUBLISHED[s][0].figure]}" for s in systems]]
    rows = []
    for (trainer, model), rs in sorted(by_model(mine).items()):
        cells = []
        for s in systems:
            figure, here = PUBLISHED[s][0].figure, [r for r in rs if r.system == s]
            cells.append(fit_spread([getattr(r, f"test_{figure}") for r in here], figure)[1] +
                         f", {count(here, 'seed')}" if here else "not run")
        rows.append([trainer, model, *cells])
    best = []
    for s in systems:
        neural = [p for p in PUBLISHED[s] if p.method.startswith("neural ODE")]
        p = min(neural, key=lambda p: p.value if p.figure == "rmse" else -p.value) if neural else None
        best.append("" if p is None else ("> " if p.at_least else "") + f"{fmt(p.value)} ({p.source}" +
                    (f", {fmt(p.seconds)} s" if p.seconds is not None else "") + ")")
    rows.append(["best published neural ODE", "other hardware", *best])
    return head, rows


CHANGES_TITLE = "What changed since the earlier records"


def harness_changes(then: list[Record], now: list[Record]) -> list[str]:
    """What changed between two sets of headline records in every cell at once, the rules of the harness rather than
    a cell's settings: the commits they were made at, the evaluation cadence, and whether the training clock counted
    the trainer's setup (a record with `setup_seconds` was made with the setup on the clock)."""
    def cadences(rs):
        return sorted({", ".join(f"{k} {v}" for k, v in sorted((r.config.get("cadence") or {}).items())) or "none"
                       for r in rs})

    def setup(rs):
        on = sum(r.setup_seconds is not None for r in rs if r.ok)
        total = sum(r.ok for r in rs)
        return "on the clock" if on == total else "off the clock" if not on else f"on the clock in {on} of {total}"

    parts = []
    a, b = list(commit_counts(then)), list(commit_counts(now))
    if a != b:
        parts.append(f"commit {', '.join(a)} -> {', '.join(b)}")
    a, b = cadences(then), cadences(now)
    if a != b:
        parts.append(f"evaluation cadence {'; '.join(a)} -> {'; '.join(b)}")
    a, b = setup(then), setup(now)
    if a != b:
        parts.append(f"the trainer's setup {a} -> {b} (ok runs)")
    return parts


def change_blocks(then, now) -> list[tuple]:
    """The section CHANGES_TITLE, from two reports' records and verdicts (`specbench.report.document.Decided`: `now`
    and the earlier `then`): every verdict whose place (claim, system, regime, label) holds another verdict in the
    two, or is decided in only one of them ("not measured" in the other), with the median ratios of each and what
    changed in its cell between the records (trainers added or gone, seeds, target, the median budget, each
    trainer's settings where both have an ok run), so a reader can say which rule moved it; and how many stayed.
    The scaling studies' verdicts are compared only where both sides have study records."""
    with_studies = bool(then.studied) and bool(now.studied)

    def placed(verdicts) -> dict:
        return {(v.claim, v.system, v.regime, v.label): v for v in verdicts
                if v.system != "-" and (with_studies or not v.study)}

    before, after = placed(then.verdicts), placed(now.verdicts)
    moved = [k for k in dict.fromkeys([*after, *before])
             if k not in before or k not in after or before[k].shown != after[k].shown]

    def cells(decided) -> dict:
        by: dict = {}
        for r in decided.headline:
            by.setdefault((r.system, r.regime), []).append(r)
        return by

    cells_then, cells_now = cells(then), cells(now)

    def what(system: str, regime: str) -> str:
        old, new = cells_then.get((system, regime), []), cells_now.get((system, regime), [])
        if not old or not new:
            return ""
        parts = []
        trainers_old, trainers_new = {r.trainer for r in old}, {r.trainer for r in new}
        if trainers_new - trainers_old:
            parts.append("trainers added: " + ", ".join(sorted(trainers_new - trainers_old)))
        if trainers_old - trainers_new:
            parts.append("trainers gone: " + ", ".join(sorted(trainers_old - trainers_new)))
        seeds_old, seeds_new = len({r.seed for r in old}), len({r.seed for r in new})
        if seeds_old != seeds_new:
            parts.append(f"seeds {seeds_old} -> {seeds_new}")
        target_old, target_new = median([r.target_loss for r in old]), median([r.target_loss for r in new])
        if target_old != target_new:
            parts.append(f"target {fmt(target_old)} -> {fmt(target_new)}")
        budget_old = median([measures.budget_s(r) for r in old])
        budget_new = median([measures.budget_s(r) for r in new])
        if budget_old != budget_new:
            parts.append(f"budget {fmt(budget_old)} s -> {fmt(budget_new)} s")
        for trainer in sorted(trainers_old & trainers_new):
            a, b = (next((record_settings(r, ("budget_s", "threads", "device")) for r in rs
                          if r.trainer == trainer and r.ok), None) for rs in (old, new))
            if a is None or b is None:
                continue
            differ = sorted(k for k in set(a) & set(b) if a[k] != b[k])
            if differ:
                parts.append(f"{trainer}: " + ", ".join(f"{k} {a[k]} -> {b[k]}" for k in differ[:3]) +
                             (f" and {len(differ) - 3} more" if len(differ) > 3 else ""))
        return "; ".join(parts)

    def ratios(v: Verdict | None) -> str:
        return "" if v is None else ", ".join(f"{b} {v.ratios[b]}" for b in v.ratios)

    rows = [[claim, system, regime, before[k].shown if k in before else "not measured",
             after[k].shown if k in after else "not measured", ratios(before.get(k)), ratios(after.get(k)),
             what(system, regime)]
            for k in moved for claim, system, regime, _ in [k]]
    same = sum(1 for k in after if k in before and before[k].shown == after[k].shown)
    since = then.command.removeprefix("specbench report ")
    text = (f"Against `{since}`: {count(moved, 'verdict')} moved, {same} stayed the same. Ratios are the median "
            "per-seed ratios (baseline / spectral) of each; 'what changed in its cell' compares the two sets of "
            "records (the trainers, seeds, target, median budget, and each trainer's settings where both have an ok "
            "run), from which the rule that moved a verdict can be read.")
    every = harness_changes(then.headline, now.headline)
    if every:
        text += " In every cell: " + "; ".join(every) + "."
    if not with_studies and (then.studied or now.studied):
        text += " The scaling studies' verdicts are left out: only one of the two has study records."
    if then.warnings:
        text += " Earlier records skipped: " + "; ".join(then.warnings)
    blocks = [("h2", CHANGES_TITLE), ("p", text)]
    if rows:
        blocks.append(("details", f"{count(moved, 'verdict')} that moved", [
            ("table", ["claim", "system", "regime", "then", "now", "ratios then", "ratios now",
                       "what changed in its cell"], rows)]))
    return blocks


def fit_spread(values: list, figure: str) -> tuple[float, str]:
    """(median, 'median (min to max)') of a fit figure over seeds, a run without one (it failed) counting as the
    worst value there is: +inf for an RMSE, -inf for an R^2, and written 'n/a' wherever it decides what is shown."""
    worst = math.inf if figure == "rmse" else -math.inf
    v = sorted(worst if x is None else float(x) for x in values)
    mid = len(v) // 2
    if len(v) % 2:
        m = v[mid]
    else:
        m = (v[mid - 1] + v[mid]) / 2 if math.isfinite(v[mid - 1]) and math.isfinite(v[mid]) else worst
    shown = [fmt(x) if math.isfinite(x) else "n/a" for x in (m, v[0], v[-1])]
    return m, shown[0] + (f" ({shown[1]} to {shown[2]})" if len(v) > 1 else "")
