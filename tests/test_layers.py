"""The layer rule of DESIGN.md, read from the source: every module of ``tfserve_nb`` is parsed with
``ast`` and each of its ``import`` statements (at module level, inside functions and under
``TYPE_CHECKING`` alike; relative ones resolved) is an edge from the importing module to the
imported one. Module names in strings (``importlib.import_module``, the lazy table of
``tfserve_nb/__init__.py``) are not edges.

The rules: a module imports only from its own floor or below (:data:`FLOORS`); ``core`` imports
no framework (nothing beyond the standard library) and not ``protocol``; ``client`` reaches
nothing of ``model_server``, ``servables`` or ``backends``; no import cycles. Each failure lists
every offending edge as ``importer -> imported`` with the floors and the line.
"""

from __future__ import annotations

import ast
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "tfserve_nb"

FLOORS: dict[str, int] = {
    # 0: the ground floor
    "core": 0,
    "protocol": 0,
    "errors": 0,
    "config": 0,
    "processes": 0,
    "waiting": 0,
    "version": 0,
    # 1: what a server is built from
    "sources": 1,
    "servables": 1,
    "batching": 1,
    "export": 1,
    "storage": 1,
    # 2: the server
    "model_server": 2,
    # 3: running a server
    "backends": 3,
    # 4: talking to one
    "client": 4,
    "handle": 4,
    "by_hand": 4,
    "request_inputs": 4,
    "rollout": 4,
    "traffic.split": 4,
    "notebook_progress": 4,
    "responses": 4,
    "signature_cache": 4,
    "deploy": 4,  # manifests from configs (handle.deployment calls it)
    # 5: working with one from the notebook
    "traffic": 5,
    # 6: the notebook's front: views, commands and the package itself (tfserve_nb/__init__.py)
    "widgets": 6,
    "demo": 6,
    "cli": 6,
    "exercise": 6,
    "": 6,
}
"""The floor of each part of the package, by module path below ``tfserve_nb`` (the longest
matching entry wins, so ``traffic.split`` is on 4 and the rest of ``traffic`` on 5)."""

CLIENT_MUST_NOT_REACH = ("model_server", "servables", "backends")


@dataclass(frozen=True)
class Import:
    """``importer`` imports ``imported`` (a module of the package, or a top-level name outside
    it) at ``line``."""

    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} (line {self.line})"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {
    _module_name(path): path for path in sorted((ROOT / PACKAGE).rglob("*.py"))
}


def _imports_of(module: str) -> Iterator[Import]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                internal = name == PACKAGE or name.startswith(PACKAGE + ".")
                yield Import(module, name if internal else name.partition(".")[0], node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                yield Import(module, base.partition(".")[0], node.lineno)
                continue
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                submodule = f"{base}.{alias.name}"
                yield Import(module, submodule if submodule in MODULES else base, node.lineno)


@cache
def all_imports() -> tuple[Import, ...]:
    return tuple(dict.fromkeys(edge for module in MODULES for edge in _imports_of(module)))


def internal_imports() -> list[Import]:
    return [
        edge
        for edge in all_imports()
        if edge.imported in MODULES and edge.imported != edge.importer
    ]


def floor_of(module: str) -> int:
    """The floor of ``module`` (a dotted name in the package); KeyError if it has none."""
    relative = module.removeprefix(PACKAGE).removeprefix(".")
    if not relative:
        return FLOORS[""]
    matches = [key for key in FLOORS if key and (relative == key or relative.startswith(f"{key}."))]
    if not matches:
        raise KeyError(module)
    return FLOORS[max(matches, key=len)]


def _report(title: str, lines: list[str]) -> str:
    return f"{title} ({len(lines)}):\n" + "\n".join(f"  {line}" for line in lines)


def test_every_module_has_a_floor() -> None:
    missing = []
    for module in MODULES:
        try:
            floor_of(module)
        except KeyError:
            missing.append(module)
    assert not missing, _report("modules with no floor: add them to FLOORS", missing)


def test_every_import_of_the_package_names_one_of_its_modules() -> None:
    """Checks the resolution above as much as the source: an unresolved internal import is a
    module that does not exist."""
    unresolved = [
        str(edge)
        for edge in all_imports()
        if (edge.imported == PACKAGE or edge.imported.startswith(PACKAGE + "."))
        and edge.imported not in MODULES
    ]
    assert not unresolved, _report("imports of modules that do not exist", unresolved)


def test_a_module_imports_only_from_its_own_floor_or_below() -> None:
    """Modules with no floor are left to :func:`test_every_module_has_a_floor`."""
    floors = {}
    for module in MODULES:
        with contextlib.suppress(KeyError):
            floors[module] = floor_of(module)
    upward = [
        f"{edge.importer} (floor {floors[edge.importer]}) -> {edge.imported} "
        f"(floor {floors[edge.imported]}), line {edge.line}"
        for edge in internal_imports()
        if edge.importer in floors
        and edge.imported in floors
        and floors[edge.imported] > floors[edge.importer]
    ]
    assert not upward, _report("imports from a higher floor", upward)


def test_core_imports_no_framework_and_not_protocol() -> None:
    core = f"{PACKAGE}.core"
    offending = [
        str(edge)
        for edge in all_imports()
        if (edge.importer == core or edge.importer.startswith(f"{core}."))
        and (
            edge.imported.startswith(f"{PACKAGE}.protocol")
            or (edge.imported not in MODULES and edge.imported not in sys.stdlib_module_names)
        )
    ]
    assert not offending, _report("core imports beyond the standard library and floor 0", offending)


def test_core_and_sources_import_no_framework() -> None:
    """``core/`` and ``sources/`` are framework-free when run: importing every one of their
    modules in a fresh interpreter loads no TensorFlow, gRPC, Docker or widgets."""
    modules = sorted(
        module
        for module in MODULES
        if module.partition(".")[2].partition(".")[0] in ("core", "sources")
    )
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in ('tensorflow', 'grpc', 'docker', 'ipywidgets', 'keras') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_client_reaches_no_server_code() -> None:
    """``client`` speaks the protocol only: nothing it imports, directly or through other
    modules, is part of a server."""
    graph: dict[str, list[Import]] = {}
    for edge in internal_imports():
        graph.setdefault(edge.importer, []).append(edge)
    start = f"{PACKAGE}.client"
    paths: dict[str, list[Import]] = {start: []}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for edge in graph.get(module, []):
            if edge.imported not in paths:
                paths[edge.imported] = [*paths[module], edge]
                queue.append(edge.imported)
    forbidden = tuple(f"{PACKAGE}.{part}" for part in CLIENT_MUST_NOT_REACH)
    reached = [
        " -> ".join([start, *(f"{e.imported} (line {e.line})" for e in path)])
        for module, path in sorted(paths.items())
        if module.startswith(forbidden)
    ]
    assert not reached, _report(f"client reaches {', '.join(CLIENT_MUST_NOT_REACH)}", reached)


def _cycles(edges: list[Import]) -> list[list[Import]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    graph: dict[str, list[Import]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, []).append(edge)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for edge in graph.get(module, []):
            if edge.imported not in index:
                visit(edge.imported)
                low[module] = min(low[module], low[edge.imported])
            elif edge.imported in stack:
                low[module] = min(low[module], index[edge.imported])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(component)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(MODULES)))
    try:
        for module in sorted(graph):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)

    cycles = []
    for component in components:  # the shortest way from the first member back to itself
        first = min(component)
        paths: dict[str, list[Import]] = {first: []}
        queue = [first]
        cycle: list[Import] | None = None
        while queue and cycle is None:
            module = queue.pop(0)
            for edge in graph.get(module, []):
                if edge.imported == first:
                    cycle = [*paths[module], edge]
                    break
                if edge.imported in component and edge.imported not in paths:
                    paths[edge.imported] = [*paths[module], edge]
                    queue.append(edge.imported)
        assert cycle is not None
        cycles.append(cycle)
    return cycles


def test_no_import_cycles() -> None:
    cycles = [
        " -> ".join([cycle[0].importer, *(f"{e.imported} (line {e.line})" for e in cycle)])
        for cycle in _cycles(internal_imports())
    ]
    assert not cycles, _report("import cycles", cycles)


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ([("a", "b"), ("b", "c")], []),
        ([("a", "b"), ("b", "a")], [["a", "b", "a"]]),
        ([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")], [["a", "b", "c", "a"]]),
    ],
)
def test_cycles_are_found_and_spelled_out(
    edges: list[tuple[str, str]], expected: list[list[str]]
) -> None:
    found = _cycles([Import(importer, imported, 1) for importer, imported in edges])
    assert [[c[0].importer, *(e.imported for e in c)] for c in found] == expected
