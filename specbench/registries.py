"""The registries of systems and trainers: the built-ins, entry points and plugin modules, behind one mapping each.

A user adds a system or a trainer without editing the package, in one of two standard ways:
- an installed distribution declares it in the entry-point group `specbench.systems` or `specbench.trainers`
  (`name = "module:Class"`), or
- a plugin module (a dotted module name or a path to a .py file) defines `SYSTEMS` and/or `TRAINERS` dicts of
  name -> class, passed with `--plugin` (or listed in the environment variable SPECBENCH_PLUGINS, separated by
  the path separator, which is how asv and every worker process see the same registry).
A name may be registered once; a plugin that fails to import or a class that misses what the package needs is
one UsageError line. Built-in trainers are imported when first used (`specbench.trainers.BUILTIN`), so a reader
of names (the report, the gate, the command line's choices) never loads torch.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path

from specbench import systems, trainers
from specbench.core.errors import UsageError
from specbench.core.records import REQUIRED_REGIMES, ROLES
from specbench.systems import System

ENV = "SPECBENCH_PLUGINS"
_loaded: dict[str, object] = {}  # plugin spec -> its module, so each is imported once per process


class Registry(Mapping):
    """name -> class. The built-ins first (a class, or "module:Class" imported on first use), then entry points
    and plugins, read on first use."""

    def __init__(self, kind: str, group: str, base: str, builtins: dict):
        self.kind, self.group, self.base = kind, group, base
        self._items = dict(builtins)
        self._extended = False

    def names(self, extend: bool = True) -> list[str]:
        """The registered names; extend=False: the built-ins and what was registered so far, loading nothing."""
        if extend:
            self._extend()
        return list(self._items)

    def _extend(self) -> None:
        if self._extended:
            return
        self._extended = True
        for ep in entry_points(group=self.group):
            try:
                cls = ep.load()
            except Exception as exc:  # a broken distribution: one line, not a traceback
                raise UsageError(f"entry point {ep.name!r} in {self.group} failed to load: "
                                 f"{exc.__class__.__name__}: {exc}") from None
            self.register(ep.name, cls, f"entry point {ep.value}")
        for spec in env_plugins():
            load_plugin(spec)

    def register(self, name: str, cls, where: str) -> None:
        check_class(self.kind, self.base, name, cls, where)
        if name in self._items and self[name] is not cls:
            raise UsageError(f"{where}: {self.kind} {name!r} is already registered")
        self._items[name] = cls

    def __contains__(self, name) -> bool:  # Mapping's would load the class
        if name not in self._items:
            self._extend()
        return name in self._items

    def __getitem__(self, name):
        if name not in self._items:
            self._extend()
        cls = self._items[name]
        if isinstance(cls, str):  # a built-in named by path: import it now
            module, _, attr = cls.partition(":")
            cls = getattr(importlib.import_module(module), attr)
            check_class(self.kind, self.base, name, cls, f"built-in {self._items[name]}")
            self._items[name] = cls
        return cls

    def __iter__(self):
        self._extend()
        return iter(self._items)

    def __len__(self):
        self._extend()
        return len(self._items)

    def get_class(self, name: str):
        if name not in self:
            raise UsageError(f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self)}")
        return self[name]


REQUIRED = {  # what a plugin class must have for the rest of the package to use it
    "system": ("f", "sample_initial", "params", "target", "test_horizon", "regimes", "dim"),
    "trainer": ("role", "defaults", "tuning_grid", "_step"),
}


def check_class(kind: str, base: str, name: str, cls, where: str) -> None:
    """A registered class must be a class of the right base with what the package reads from it."""
    module, _, cls_name = base.rpartition(".")
    base_cls = getattr(importlib.import_module(module), cls_name)
    if not (isinstance(cls, type) and issubclass(cls, base_cls)):
        raise UsageError(f"{where}: {kind} {name!r} is not a subclass of {base}")
    missing = [a for a in REQUIRED[kind] if not hasattr(cls, a) and a not in getattr(cls, "__dataclass_fields__", {})]
    if missing:
        raise UsageError(f"{where}: {kind} {name!r} has no {', '.join(missing)}")
    if kind == "system":
        target = getattr(cls, "target", None)
        if not (isinstance(target, (int, float)) and not isinstance(target, bool) and 0 < target < float("inf")):
            raise UsageError(f"{where}: system {name!r} has no positive target (got {target!r})")
        problem = system_problem(cls)
        if problem:
            raise UsageError(f"{where}: system {name!r} {problem}")
    if kind == "trainer" and cls.role not in ROLES:
        raise UsageError(f"{where}: trainer {name!r} has role {cls.role!r}; valid roles: {', '.join(ROLES)}")


def system_problem(cls) -> str | None:
    """What makes a system class unusable before any data is made or run trained (None when nothing): it must
    build with its defaults, with at least one state, positive spans and, made from equations, both regimes with
    trajectories; a measured one (kind "measured"), its one regime, dense: the data as measured."""
    try:
        s = cls()
    except Exception as exc:  # the user's class: say why in one line
        return f"cannot be built with its defaults ({exc.__class__.__name__}: {exc})"
    if not (isinstance(s.dim, int) and not isinstance(s.dim, bool) and s.dim >= 1):
        return f"has dim = {s.dim!r}; a system needs at least one state"
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < float("inf")
               for x in (s.t_span, s.test_horizon)):
        return f"needs positive t_span and test_horizon (got {s.t_span!r}, {s.test_horizon!r})"
    required = REQUIRED_REGIMES if getattr(s, "kind", "equations") == "equations" else REQUIRED_REGIMES[:1]
    missing = [r for r in required if r not in (s.regimes or {})]
    if missing:
        return f"has no regime {', '.join(missing)}"
    for r in required:
        spec = s.regimes[r]
        if not (spec.n_train >= 1 and spec.n_test >= 1 and spec.n_times >= 2):
            return f"regime {r!r} needs a trajectory to train on, one to test on and two times ({spec})"
    return None


def env_plugins() -> list[str]:
    return [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]


def load_plugin(spec: str):
    """Import a plugin (a .py path or a dotted module name) once and register its SYSTEMS and TRAINERS."""
    key = str(Path(spec).resolve()) if spec.endswith(".py") else spec
    if key in _loaded:
        return _loaded[key]
    path = Path(spec)
    if (spec.endswith(".py") or "/" in spec or os.sep in spec) and path.is_dir():  # a path, not a module name
        raise UsageError(f"plugin {spec} is a directory; give a .py file (or a module name) that defines SYSTEMS "
                         "and/or TRAINERS")
    try:
        if spec.endswith(".py"):
            if not path.is_file():
                raise UsageError(f"plugin {spec}: no such file")
            mod_name = f"specbench_plugin_{path.stem}"
            loader = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(loader)
            sys.modules[mod_name] = module
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(spec)
    except UsageError:
        raise
    except Exception as exc:  # any error in the user's module is theirs to fix: say which and why, in one line
        raise UsageError(f"plugin {spec} failed to import: {exc.__class__.__name__}: {exc}") from None
    found = 0
    for attr, registry in (("SYSTEMS", SYSTEMS), ("TRAINERS", TRAINERS)):
        for name, cls in (getattr(module, attr, None) or {}).items():
            registry.register(name, cls, f"plugin {spec}")
            found += 1
    if not found:
        raise UsageError(f"plugin {spec} defines no SYSTEMS or TRAINERS (dicts of name -> class)")
    _loaded[key] = module
    return module


def use_plugins(specs: list[str]) -> list[str]:
    """Load `specs` here and add them to SPECBENCH_PLUGINS, so every process this one starts sees them too.
    Returns the specs as absolute paths (for .py files), as jobs carry them to other machines' workers."""
    specs = [str(Path(s).resolve()) if s.endswith(".py") else s for s in specs]
    for spec in specs:
        load_plugin(spec)
    merged = list(dict.fromkeys(env_plugins() + specs))
    if merged:
        os.environ[ENV] = os.pathsep.join(merged)
    return merged


SYSTEMS: Registry = Registry("system", "specbench.systems", "specbench.systems.base.System", systems.BUILTIN)
TRAINERS: Registry = Registry("trainer", "specbench.trainers", "specbench.trainers.base.Trainer", trainers.BUILTIN)


def equation_systems() -> list[str]:
    """The registered systems made from equations (kind "equations"): the ones with a ground truth to simulate,
    which the work measures and the studies run; measured systems are read from data."""
    return [name for name, cls in SYSTEMS.items() if cls.kind == "equations"]


def measured_systems() -> list[str]:
    """The registered systems read from measurements (kind "measured"): real data, no equations behind them."""
    return [name for name, cls in SYSTEMS.items() if cls.kind == "measured"]


def get_system(name: str, **params) -> System:
    """The system `name`, built with `params` (e.g. `n=128` for `network`); UsageError for an unknown name."""
    cls = SYSTEMS.get_class(name)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad parameters for system {name!r}: {exc}") from None


def get_trainer(name: str):
    """The trainer class `name` (a specbench.trainers.base.Trainer); UsageError for an unknown name."""
    return TRAINERS.get_class(name)


def with_role(*roles: str) -> list[str]:
    """Names of the registered trainers whose role is one of `roles`, in registry order."""
    return [name for name, cls in TRAINERS.items() if cls.role in roles]


def candidate() -> str:
    """The method under test: the one trainer whose role is "candidate"."""
    names = with_role("candidate")
    return names[0] if names else ""


def record_roles() -> dict[str, str | None]:
    """What a reader of records passes to `specbench.core.records.load`: every trainer this process knows, with the
    role its records had before records carried one. Loads plugins and entry points, not the built-ins."""
    return {name: trainers.RECORDED_ROLES.get(name) for name in TRAINERS.names()}
