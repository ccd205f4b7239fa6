"""The shape of the house, checked on every run (docs/architecture.md).

The import graph of `capa/` is read from the source with `ast`, every import counted — at module
level and inside functions — except those under `if TYPE_CHECKING:`, which never run. The graph must
have no cycle; layers point one way; database drivers stay in `capa/adapters/`; and a module longer
than ~400 lines says why in a `Size:` line of its docstring."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "capa"
SIZE_LIMIT = 400
DRIVERS = ("sqlite3", "psycopg", "psycopg_pool")

#: Which top-level parts of capa each part may import. Everything points one way: the entry
#: points (cli, and the HTTP server it starts and talks to) → application services (app) →
#: audit / reports / read models → domain; adapters hold persistence and may know the domain,
#: never the application or an entry point.
MAY_IMPORT: dict[str, set[str]] = {
    "domain": {"domain"},
    "adapters": {"adapters", "domain"},
    "readmodels": {"readmodels", "adapters", "domain"},
    "audit": {"audit", "adapters", "domain", "readmodels"},
    "reports": {"reports", "audit", "adapters", "domain", "readmodels"},
    "validation": {"validation", "reports", "domain"},
    "app": {"app", "audit", "reports", "readmodels", "adapters", "domain", "validation"},
    "server": {"server", "app", "audit", "reports", "readmodels", "adapters", "domain"},
    "cli": {"cli", "server", "app", "audit", "reports", "readmodels", "adapters", "domain",
            "validation"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported(tree: ast.AST, here: str, is_package: bool) -> Iterable[str]:
    """Every module name an import in `tree` may load, TYPE_CHECKING blocks left out."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop] if drop else anchor
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"
        stack.extend(ast.iter_child_nodes(node))


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = set()
        for target in imported(tree, name, path.name == "__init__.py"):
            if target in files and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def part(module: str) -> str | None:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 2 or (len(pieces) == 2 and pieces[1] in MAY_IMPORT) else None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_is_read_from_the_source() -> None:
    edges = graph()
    assert "capa.cli.main" in edges and edges["capa.cli.main"], "the CLI imports nothing?"
    assert len(edges) > 50


def test_no_import_cycle_inside_capa() -> None:
    assert cycles(graph()) == []


def test_layers_point_one_way() -> None:
    wrong = []
    for module, targets in graph().items():
        source = part(module)
        if source is None or source not in MAY_IMPORT:
            continue
        for target in targets:
            into = part(target)
            if into is not None and into not in MAY_IMPORT[source]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_the_cli_is_imported_by_nothing_below_it() -> None:
    edges = graph()
    below = [m for m in edges if part(m) in {"domain", "adapters", "app", "audit", "reports"}]
    assert [f"{m} → {t}" for m in below for t in edges[m] if t.startswith("capa.cli")] == []


def test_database_drivers_are_imported_only_in_adapters() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "adapters":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for target in imported(tree, module_name(path), path.name == "__init__.py"):
            if target.split(".")[0] in DRIVERS:
                wrong.append(f"{module_name(path)} imports {target}")
    assert wrong == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=module_name)
def test_a_long_module_says_why(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    if lines <= SIZE_LIMIT:
        return
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    reasons = [line for line in doc.splitlines() if line.strip().startswith("Size:")]
    assert reasons, f"{module_name(path)} has {lines} lines and no 'Size:' line saying why"
