"""The house rules a newcomer relies on (README "Where things are"): modules and functions short
enough to read, the package direction of DESIGN.md, and no import cycles."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("coordination", "calendars", "notifications")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            name = ".".join(relative.with_suffix("").parts)
            yield name.removesuffix(".__init__"), path


def _imports(name: str, path: Path) -> set[str]:
    """Every module of ours that ``name`` imports, at the top or inside a function."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module.split(".")[0] in PACKAGES}


def test_no_module_is_longer_than_a_newcomer_reads_in_one_go() -> None:
    long = {name: n for name, path in _modules() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_is_longer_than_one_screen_and_a_half() -> None:
    long: dict[str, int] = {}
    for name, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{name}.{node.name}"] = length
    assert long == {}


def test_packages_depend_in_one_direction() -> None:
    """``coordination`` uses ``calendars`` and ``notifications``; ``notifications`` uses
    ``calendars``; ``calendars`` uses neither (DESIGN.md, Architecture)."""
    allowed = {"calendars": {"calendars"}, "notifications": {"calendars", "notifications"},
               "coordination": set(PACKAGES)}
    wrong = {
        f"{name} -> {target}"
        for name, path in _modules()
        for target in _imports(name, path)
        if target.split(".")[0] not in allowed[name.split(".")[0]]
    }
    assert wrong == set()


def test_no_import_cycles() -> None:
    modules = dict(_modules())
    graph = {name: {t for t in _imports(name, path) if t in modules and t != name} for name, path in modules.items()}
    # A package's __init__ is imported on the way to its modules; it holds only a docstring here.
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == []
