"""A trainer's settings, declared once on the trainer (benchopt's solver `parameters`, with types): each setting's
name, type, default, valid range, tuning grid, how tuning extends that grid past an edge, and one line of meaning.

    settings = (
        Setting("lr", 1e-2, "Adam learning rate", low=0.0, reach=(1e-5, 1.0), grid=(3e-3, 1e-2, 3e-2),
                scale="log"),
        Setting("segment_length", 20, "observations per segment, its initial state included", int, low=2,
                limit=OBSERVATIONS, grid=(10, 20, 40), scale="log"),
        Setting("schedule", "constant", "learning-rate schedule", str, choices=SCHEDULES, grid=SCHEDULES),
    )

A trainer's `defaults` and `tuning_grid` are derived from its declaration (`Trainer.__init_subclass__`), a job's
settings are checked against it when the job is made (`check`, from `specbench.running.job.make_job`), so a typo or a
value out of range is one line before any training, and `specbench tune` extends a grid by each setting's own rule
(`Setting.past`). Only the standard library: the command line reads declarations without loading torch.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from specbench.core.errors import UsageError

# How tuning extends a grid past an edge: a step on a log scale (the ratio of the grid's two outermost values at that
# edge: lr 3e-3, 1e-2, 3e-2 -> 9e-2), on a linear scale (their difference: p 4, 6, 8 -> 10), or to the next value of
# an ordered ladder (tolerance pairs, batch sizes up to "all"); "": not extended (unordered choices, booleans).
SCALES = ("log", "linear", "ladder", "")


@dataclass(frozen=True)
class Shape:
    """The size of a cell's training data, which some settings' useful ranges depend on."""

    trajectories: int
    observations: int  # per trajectory


@dataclass(frozen=True)
class Limit:
    """The largest useful value of a setting on data of a given shape, and what a larger value runs as: the limit
    itself (`beyond` None: the trainer clamps to it) or a word (`beyond` "all": every element or segment)."""

    says: str  # "the observations per trajectory"
    of: Callable[[Shape, Mapping[str, Any]], int]  # from the data's shape and the run's other settings
    beyond: Any = None

    def __call__(self, value, shape: Shape, settings: Mapping[str, Any]):
        """`value` as a trainer runs it on data of `shape` with `settings`."""
        most = self.of(shape, settings)
        if value <= most:
            return value
        return most if self.beyond is None else self.beyond


OBSERVATIONS = Limit("the observations per trajectory", lambda shape, _: shape.observations)


@dataclass(frozen=True)
class Setting:
    """One setting: what it is called from the TOML to the line it controls, what it takes and means, and how
    `specbench tune` searches it."""

    name: str
    default: Any
    meaning: str  # one line
    type: type = float  # float (an int is taken too), int, bool or str
    low: float | None = None  # valid range, both ends included
    high: float | None = None
    reach: tuple[float, float] | None = None  # where tuning may extend a grid, if narrower: a sane learning rate
    words: tuple = ()  # what a numeric setting also takes besides numbers: "all", "auto"
    choices: tuple = ()  # a categorical setting's values (in order, where it has one)
    grid: tuple = ()  # the values `specbench tune` searches; empty: not tuned
    scale: str = ""  # how tuning extends the grid past an edge (SCALES)
    ladder: tuple = ()  # scale "ladder": the ordered values the grid extends along
    limit: Limit | None = None  # its largest useful value on a cell's data (tuning stays within it)

    def problem(self, value) -> str | None:
        """Why `value` is not a valid value of this setting (None when it is)."""
        if isinstance(value, str) and value in self.words:
            return None
        if self.choices:
            return None if any(_same(value, c) for c in self.choices) else f"must be {self.valid()}"
        if not _of_type(value, self.type) or (self.low is not None and value < self.low) or \
                (self.high is not None and value > self.high):
            return f"must be {self.valid()}"
        return None

    def valid(self) -> str:
        """What this setting takes, in words: "an integer >= 2", "a number from 1e-05 to 1", "one of ..."."""
        if self.choices:
            return ("one of " if len(self.choices) > 1 else "") + ", ".join(map(_show, self.choices))
        kind = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}[self.type]
        if self.low is not None and self.high is not None:
            kind += f" from {self.low:g} to {self.high:g}"
        elif self.low is not None:
            kind += f" >= {self.low:g}"
        elif self.high is not None:
            kind += f" <= {self.high:g}"
        if self.limit is not None:
            kind += f" (used up to {self.limit.says})"
        return " or ".join([*map(_show, self.words), kind])

    def ordered(self, values) -> list:
        """`values` (some of this setting's) from the smallest to the largest: along the ladder, or numbers first
        and words after them (a word is everything: "all")."""
        if self.scale == "ladder":
            return sorted(values, key=self.ladder.index)
        return sorted(values, key=lambda v: (isinstance(v, str), v if not isinstance(v, str) else 0))

    def past(self, values, up: bool, shape: Shape | None = None, settings: Mapping[str, Any] | None = None):
        """The value one step past the largest (`up`) or the smallest of `values` (the grid so far), by this
        setting's scale, within its valid range (its `reach`, where narrower) and its limit on data of `shape` (with
        the other settings at `settings`); None where there is none: that edge ends the range (or what the scale
        reaches: a log scale never passes 0), or the setting is not extended."""
        if not self.scale:
            return None
        ordered = self.ordered(values)
        edge = ordered[-1] if up else ordered[0]
        if self.scale == "ladder":  # the next rung that runs as a new value (a batch of every element is "all")
            i = self.ladder.index(edge)
            while 0 <= (i := i + (1 if up else -1)) < len(self.ladder):
                new = self.runs_as(self.ladder[i], shape, {**(settings or {}), self.name: self.ladder[i]})
                if not any(_same(new, v) for v in values) and self.problem(new) is None:
                    return new
            return None
        numbers = [v for v in ordered if not isinstance(v, str)]
        if len(numbers) < 2 or isinstance(edge, str):
            return None
        inner = numbers[-2] if up else numbers[1]
        if self.scale == "log" and (edge == 0 or inner == 0 or (edge > 0) != (inner > 0)):
            return None  # 0 is as far as a log scale goes: the next step would be 0 again
        new = edge * edge / inner if self.scale == "log" else 2 * edge - inner
        if self.type is int:
            new = math.floor(new + 0.5)
            new = new if new != edge else edge + (1 if up else -1)
        else:
            new = float(f"{new:.3g}")  # 0.09, not 0.09000000000000001
        low, high = self.reach or (self.low, self.high)
        if low is not None and new < low:  # a step past an end of the range stops at that end
            new = math.ceil(low) if self.type is int else low
        if high is not None and new > high:
            new = math.floor(high) if self.type is int else high
        new = self.runs_as(new, shape, {**(settings or {}), self.name: new})
        if any(_same(new, v) for v in values) or self.problem(new) is not None:
            return None
        return new

    def within(self, shape: Shape, settings: Mapping[str, Any]) -> tuple:
        """This setting's grid on data of `shape` (the other settings at `settings`): values past its limit
        dropped and the grid extended from the edge that stays, by its scale, to as many values as it had, so that
        no two values run as the same setting."""
        if self.limit is None or not self.grid or shape is None:
            return self.grid
        ran = {v: self.runs_as(v, shape, settings) for v in self.grid}
        kept = [v for v in self.grid if _same(ran[v], v)]
        if not kept:  # every value is past the limit: start from what they all run as
            kept = [ran[self.grid[0]]]
        while len(kept) < len(self.grid):  # limits are upper ones: extend downwards first
            new = next((n for n in (self.past(kept, False, shape, settings), self.past(kept, True, shape, settings))
                        if n is not None), None)
            if new is None:
                break
            kept.append(new)
        return tuple(self.ordered(kept))

    def runs_as(self, value, shape: Shape | None, settings: Mapping[str, Any]):
        """`value` as the trainer runs it on data of `shape` with the other settings `settings`."""
        if self.limit is None or shape is None or isinstance(value, str):
            return value
        return self.limit(value, shape, settings)


@dataclass(frozen=True)
class Joint:
    """Settings tuned together, as one axis of the grid whose values are tables of them: a solver's tolerance pair
    (rtol, atol). Extended along its ladder, whose ends are the ends of its range."""

    name: str
    members: tuple[str, ...]
    meaning: str
    grid: tuple[tuple, ...]  # each a value per member
    ladder: tuple[tuple, ...]

    scale = "ladder"

    def table(self, value: tuple) -> dict:
        return dict(zip(self.members, value))

    def ordered(self, values) -> list:
        return sorted(values, key=lambda v: self.ladder.index(self.row(v)))

    def row(self, table: Mapping[str, Any]) -> tuple:
        return tuple(table[m] for m in self.members)

    def past(self, values, up: bool, shape=None, settings=None):
        """The next table of the ladder past the largest (`up`) or smallest of `values`; None at its end."""
        ordered = self.ordered(values)
        i = self.ladder.index(self.row(ordered[-1] if up else ordered[0])) + (1 if up else -1)
        if not 0 <= i < len(self.ladder) or self.table(self.ladder[i]) in values:
            return None
        return self.table(self.ladder[i])

    def within(self, shape, settings) -> tuple:
        """The grid as tables (a tolerance pair has no limit on the data)."""
        return tuple(self.table(v) for v in self.grid)


def _same(a, b) -> bool:
    """Equal and of one kind: True is not 1, 1.0 is 1."""
    return a == b and isinstance(a, bool) == isinstance(b, bool) and isinstance(a, str) == isinstance(b, str)


def _of_type(value, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, int)
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


def _show(value) -> str:
    """A value as the TOML that sets it spells it: 'all', true, 0.01."""
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, (int, float)) else repr(value)


Declaration = tuple  # of Setting and Joint, in the order a record's config lists them


def defaults_of(declared: Declaration) -> dict[str, Any]:
    return {s.name: s.default for s in declared if isinstance(s, Setting)}


def grid_of(declared: Declaration) -> dict[str, list]:
    """setting -> the values tuning searches (a joint axis: tables of its members' values)."""
    return {s.name: [s.table(v) for v in s.grid] if isinstance(s, Joint) else list(s.grid)
            for s in declared if s.grid}


def axes_of(declared: Declaration) -> dict[str, Setting | Joint]:
    """The tuned axes by name: the settings with a grid, and the joint ones."""
    return {s.name: s for s in declared if s.grid}


def by_name(declared: Declaration) -> dict[str, Setting]:
    return {s.name: s for s in declared if isinstance(s, Setting)}


def amend(declared: Declaration, *, drop: tuple[str, ...] = (), add: Declaration = (), **changes: dict
          ) -> Declaration:
    """A trainer's declaration built from its parent's: some settings' fields changed (`lr={"grid": (...)}`),
    some dropped, some added at the end."""
    unknown = (set(changes) | set(drop)) - {s.name for s in declared}
    if unknown:
        raise TypeError(f"no setting {', '.join(sorted(unknown))} to change or drop")
    return tuple(replace(s, **changes[s.name]) if s.name in changes else s
                 for s in declared if s.name not in drop) + tuple(add)


def from_plain(declared: Declaration, defaults: dict | None, grid: dict | None) -> Declaration:
    """The declaration of a trainer that gives plain `defaults` (setting -> value) and/or `tuning_grid` (setting
    -> values) dicts, as plugins may: a setting its parent declares keeps its type, range and scale with the new
    default and grid; a new one takes its type from its default (no range; a grid of numbers >= 0 extends on a
    log scale, whose end is 0, other numbers on a linear one); a grid of tables is a joint axis, not extended.
    Settings the plain `defaults` leave out are dropped (it names every setting the trainer reads)."""
    known = {s.name: s for s in declared}
    if defaults is not None:
        declared = tuple(replace(known[k], default=v) if isinstance(known.get(k), Setting) else
                         Setting(k, v, "(declared by a plain defaults dict)", _kind(v)) for k, v in defaults.items())
        declared += tuple(s for s in known.values() if isinstance(s, Joint) and set(s.members) <= set(defaults))
    if grid is not None:
        known = {s.name: s for s in declared}
        out = []
        for s in declared:
            values = tuple(grid.get(s.name, ()))
            if isinstance(s, Joint):
                values = tuple(tuple(t[m] for m in s.members) for t in values)
                out.append(replace(s, grid=values, ladder=s.ladder if set(values) <= set(s.ladder) else values))
            else:
                out.append(replace(s, grid=values, scale=s.scale if s.scale or not values else _scale(values)))
        for name, values in grid.items():
            if name in known:
                continue
            if not (values and all(isinstance(v, dict) for v in values)):
                raise TypeError(f"tuning_grid names {name!r}, which is not a setting in defaults")
            members = tuple(values[0])
            rows = tuple(tuple(v[m] for m in members) for v in values)
            out.append(Joint(name, members, "(declared by a plain tuning_grid dict)", rows, rows))
        declared = tuple(out)
    return declared


def _kind(value) -> type:
    return next(k for k in (bool, int, float, str) if isinstance(value, k)) if value is not None else str


def _scale(values) -> str:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "log" if all(v >= 0 for v in values) else "linear"
    return ""


def validate(declared: Declaration, owner: str) -> None:
    """A declaration that cannot work is a TypeError when its class is made: a default or grid value the setting
    refuses, an unknown scale, a ladder grid off its ladder, a joint axis of settings that are not declared."""
    names = by_name(declared)
    for s in declared:
        where = f"{owner}: setting {s.name!r}"
        if s.scale not in SCALES:
            raise TypeError(f"{where}: scale {s.scale!r}; valid: {', '.join(map(repr, SCALES))}")
        if isinstance(s, Joint):
            if not set(s.members) <= set(names):
                raise TypeError(f"{where}: joins settings that are not declared")
            if not set(s.grid) <= set(s.ladder):
                raise TypeError(f"{where}: grid values not on its ladder")
            continue
        for value in (s.default, *s.grid):
            problem = s.problem(value)
            if problem:
                raise TypeError(f"{where}: {value!r} {problem}")
        if s.scale == "ladder" and not all(any(_same(v, r) for r in s.ladder) for v in s.grid):
            raise TypeError(f"{where}: grid values not on its ladder")
        if s.scale == "log" and not all(isinstance(v, (int, float)) and v >= 0 for v in s.grid):
            raise TypeError(f"{where}: a log scale needs a grid of numbers >= 0")


def check(declared: Declaration, config: Mapping[str, Any], who: str) -> None:
    """Every setting in `config` is declared, with a valid value; else a one-line UsageError naming the valid
    settings or the valid values. "model" (the network's width and depth) is every trainer's."""
    names = by_name(declared)
    unknown = sorted(set(config) - set(names) - {"model"})
    if unknown:
        raise UsageError(f"unknown setting{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))} for {who}; "
                         f"valid: {', '.join(names)}, model")
    for name, value in config.items():
        problem = names[name].problem(value) if name != "model" else None
        if problem:
            raise UsageError(f"setting {name} of {who} {problem}, got {_show(value)}")
