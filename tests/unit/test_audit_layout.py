"""The audit, reports and validation packages keep their shape: no import cycle among their
modules, the ledger's SQL behind capa.adapters, one leaf encoding, and modules of a readable
size."""

from __future__ import annotations

import ast
from pathlib import Path

CAPA = Path(__file__).resolve().parents[2] / "capa"
PACKAGES = ("audit", "reports", "validation")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    return {f"capa.{package}.{path.stem}": path for package in PACKAGES
            for path in sorted((CAPA / package).glob("*.py")) if path.stem != "__init__"}


def _imports(path: Path) -> set[str]:
    """Every module an import in `path` names, at any depth of the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_import_cycle_inside_audit_reports_or_validation() -> None:
    modules = _modules()
    graph = {name: sorted(_imports(path) & modules.keys() - {name})
             for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = trail[trail.index(name):] + [name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for target in graph[name]:
            visit(target, [*trail, name])
        done.add(name)

    for name in graph:
        visit(name, [])


def test_no_database_driver_outside_the_adapters() -> None:
    drivers = {"sqlite3", "psycopg", "psycopg_pool"}
    offenders = {name: sorted(_imports(path) & drivers) for name, path in _modules().items()}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_leaf_encoding_is_written_once() -> None:
    """capa.audit.leaves is the only module of capa that spells the leaf prefix."""
    spelled = [path.relative_to(CAPA.parent).as_posix() for path in sorted(CAPA.rglob("*.py"))
               if "capa-leaf-v1" in path.read_text(encoding="utf-8")]
    assert spelled == ["capa/audit/leaves.py"]


def test_modules_are_of_a_readable_size_or_say_why() -> None:
    long = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        stated = any(line.startswith("Size:") for line in docstring.splitlines())
        if len(text.splitlines()) > MAX_LINES and not stated:
            long.append(name)
    assert long == []
