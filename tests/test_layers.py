"""The package's shape: imports only point down (no cycle, however hidden), readers of records never load torch,
and the facts kept for old records agree with the classes."""
import ast
import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import specbench

PACKAGE = Path(specbench.__file__).parent
MODULES = sorted(m.name for m in pkgutil.walk_packages([str(PACKAGE)], "specbench."))


def _module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, int, str]]]:
    """module -> the package modules it imports (at module level or in a function: Python runs both), and the
    function-level imports of package modules as (module, line, source line)."""
    files = {_module_of(p): p for p in PACKAGE.rglob("*.py")}

    def resolve(name: str) -> str | None:  # the longest prefix that is a module of the package
        parts = name.split(".")
        return next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in files), None)

    edges, local = {m: set() for m in files}, []
    for module, path in files.items():
        source = path.read_text()
        tree = ast.parse(source)
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            targets = {resolve(n) for n in names if n.split(".")[0] == "specbench"} - {None, module}
            edges[module] |= targets
            if targets and id(node) not in top:
                local.append((module, node.lineno, source.splitlines()[node.lineno - 1]))
    return edges, local


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle_hidden_in_a_function():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_module_imports_and_no_import_cycle_among_them():
    for name in MODULES:
        importlib.import_module(name)
    edges, _ = import_graph()
    assert cycles(edges) == []


def test_function_level_imports_of_the_package_are_few_and_say_why():
    """Only where a module must not load torch for commands that never need it; each says so on its line."""
    _, local = import_graph()
    assert len(local) <= 10, local
    assert all("#" in line for _, _, line in local), [x for x in local if "#" not in x[2]]


REPORT = ["report", "{tmp}", "--studies", "results/small-reference-studies", "--out", "{tmp}/report"]


@pytest.mark.parametrize("args", [pytest.param(REPORT, marks=pytest.mark.slow),  # it draws every figure
                                  ["gate", "results/small-reference", "results/small-reference"],
                                  ["gate", "results/work/reference.json", "results/work/reference.json"]])
def test_readers_of_records_run_without_torch(tmp_path, args):
    """`report` and `gate` run, and torch is not among the modules loaded when they end. (Making torch
    unimportable instead breaks scipy, which looks torch up in sys.modules.) The report reads one system's committed
    records and every committed study: all twelve figures are drawn, those per system with one system's panels."""
    (tmp_path / "runs").mkdir()
    for path in (PACKAGE.parent / "results" / "small-reference" / "runs").glob("oscillator__*.json"):
        shutil.copy(path, tmp_path / "runs")
    code = ("import sys; from specbench.cli import main; "
            f"rc = main({[a.format(tmp=tmp_path) for a in args]!r}); "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchdiffeq', 'torchode')); "
            "print('loaded:', loaded[:5], file=sys.stderr); sys.exit(rc or (3 if loaded else 0))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_roles_of_old_records_are_their_trainers_roles():
    from specbench.registries import TRAINERS
    from specbench.trainers import RECORDED_ROLES

    assert {name: TRAINERS[name].role for name in RECORDED_ROLES} == RECORDED_ROLES
