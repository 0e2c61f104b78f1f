"""The package's layering, read from the source: no import cycles, and who may import what.

Every ``import`` counts wherever it stands, under ``if TYPE_CHECKING:`` and
inside functions too: a cycle that only type checking or a lazy import sees is
still two modules that cannot be understood, or moved, one without the other.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "airfleet"


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's target, and where the statement stands."""

    importer: str
    target: str
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} -> {self.target}  ({self.file}:{self.line})"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    # A package's __init__ is the package itself.
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = _sources()


def _known(name: str) -> str:
    """``name`` if it is one of our modules, else its longest prefix that is."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports_in(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every module ``module`` imports, anywhere in its file, with the statement's line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                # from . import x / from ..y import z, relative to this module's package.
                package = module.split(".")
                anchor = package[: len(package) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                # from airfleet.x import y: module airfleet.x.y if there is one, else airfleet.x.
                yield (submodule if submodule in MODULES else base), node.lineno


def _all_imports() -> list[Import]:
    found: list[Import] = []
    for module, path in MODULES.items():
        file = path.relative_to(SRC).as_posix()
        for target, line in _imports_in(module, path):
            found.append(Import(module, target, file, line))
    return found


IMPORTS = _all_imports()


def _graph() -> dict[str, dict[str, Import]]:
    """Module -> the airfleet modules it imports (first statement for each)."""
    graph: dict[str, dict[str, Import]] = {module: {} for module in MODULES}
    for imp in IMPORTS:
        if imp.target == "airfleet" or imp.target.startswith("airfleet."):
            target = _known(imp.target)
            if target != imp.importer:
                graph[imp.importer].setdefault(
                    target, Import(imp.importer, target, imp.file, imp.line)
                )
    return graph


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's components with more than one module, each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def _shortest_path(
    graph: dict[str, dict[str, Import]], start: str, goal: str, within: set[str]
) -> list[str]:
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for succ in sorted(graph[node]):
            if succ in within and succ not in came_from:
                came_from[succ] = node
                queue.append(succ)
    path = [goal]
    while (previous := came_from[path[-1]]) is not None:
        path.append(previous)
    return path[::-1]


def _cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """For every import inside a component, the shortest cycle through it (deduplicated)."""
    cycles: dict[tuple[str, ...], list[str]] = {}
    for component in _strongly_connected(graph):
        members = set(component)
        for node in component:
            for succ in sorted(set(graph[node]) & members):
                cycle = [node, *_shortest_path(graph, succ, node, members)]
                # The same cycle found from each of its edges: keep one rotation.
                first = cycle.index(min(cycle[:-1]))
                canonical = tuple(cycle[first:-1] + cycle[:first])
                cycles.setdefault(canonical, [*canonical, canonical[0]])
    return sorted(cycles.values(), key=lambda c: (len(c), c))


def _describe(graph: dict[str, dict[str, Import]], cycle: list[str]) -> str:
    hops = [f"    {graph[a][b]}" for a, b in itertools.pairwise(cycle)]
    return " -> ".join(cycle) + "\n" + "\n".join(hops)


def test_the_module_list_is_read_from_the_source() -> None:
    """The walk finds the package, its subpackages and their imports (guards the checks below)."""
    assert {"airfleet", "airfleet.inventory", "airfleet.sim", "airfleet.sim.app"} <= set(MODULES)
    assert "airfleet.cli" in MODULES
    assert any(
        imp.importer == "airfleet.__main__" and imp.target.startswith("airfleet.cli")
        for imp in IMPORTS
    )


def test_no_import_cycles() -> None:
    """No two airfleet modules import each other, directly or round a loop, anywhere in a file."""
    graph = _graph()
    cycles = _cycles(graph)
    report = "\n\n".join(_describe(graph, cycle) for cycle in cycles)
    if cycles:
        pytest.fail(f"{len(cycles)} import cycle(s):\n\n{report}", pytrace=False)


def test_only_the_transport_and_the_simulator_import_aiohttp() -> None:
    """aiohttp stays behind airfleet/transport.py; only the simulator's server also uses it."""
    allowed = {"airfleet.transport"}
    offenders = [
        str(imp)
        for imp in IMPORTS
        if imp.target.split(".")[0] == "aiohttp"
        and imp.importer not in allowed
        and imp.importer != "airfleet.sim"
        and not imp.importer.startswith("airfleet.sim.")
    ]
    assert not offenders, "aiohttp imported outside transport.py and sim/:\n" + "\n".join(offenders)


def test_only_the_cli_imports_the_cli() -> None:
    """The library never imports airfleet.cli; only the CLI's own modules and __main__ do."""

    def in_cli(module: str) -> bool:
        return module == "airfleet.cli" or module.startswith("airfleet.cli.")

    offenders = [
        str(imp)
        for imp in IMPORTS
        if in_cli(imp.target) and not in_cli(imp.importer) and imp.importer != "airfleet.__main__"
    ]
    assert not offenders, "airfleet.cli imported from the library:\n" + "\n".join(offenders)


def test_airflow_is_imported_only_by_the_airflow_layer_s_compat_module() -> None:
    """Airflow moved its names between 2.x and 3.x: one module knows where each lives,
    and nothing outside airfleet.airflow needs Airflow at all."""
    offenders = [
        str(imp)
        for imp in IMPORTS
        if imp.target.split(".")[0] == "airflow" and imp.importer != "airfleet.airflow._compat"
    ]
    assert not offenders, "airflow imported outside airfleet/airflow/_compat.py:\n" + "\n".join(
        offenders
    )


def test_the_library_does_not_import_the_airflow_layer() -> None:
    """Jobs and the engine never depend on their Airflow host; only the other way round."""

    def in_layer(module: str) -> bool:
        return module == "airfleet.airflow" or module.startswith("airfleet.airflow.")

    offenders = [str(imp) for imp in IMPORTS if in_layer(imp.target) and not in_layer(imp.importer)]
    assert not offenders, "airfleet.airflow imported from the library:\n" + "\n".join(offenders)
