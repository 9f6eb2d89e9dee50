"""The layering rules of the design: imports point one way, and there are no import circles.

``proxy -> handlers -> handlers.api -> (store, k8s)`` and ``proxy -> k8s``; ``store/`` and
``k8s/`` never import ``proxy/`` or ``handlers/``, ``handlers/`` never imports ``proxy/``; the
proxy reaches the kinds only through ``handlers.registry`` (and builds the admission chain of
``handlers.admission``); the vocabulary imports nothing
above it; nothing that runs in production imports the dev tools, the tests or the benchmarks.
Every import counts, including those only made for type checking.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

from handlers.registry import registry
from tests.support.servers import ROOT

PRODUCTION = ("proxy", "handlers", "store", "k8s")
FORBIDDEN = {
    "handlers": {"proxy", "devtools", "tests", "bench"},
    "store": {"proxy", "handlers", "devtools", "tests", "bench"},
    "k8s": {"proxy", "handlers", "devtools", "tests", "bench"},
    "proxy": {"devtools", "tests", "bench"},
    "devtools": {"handlers", "store", "k8s", "tests", "bench"},
}
"""Top-level packages each package may not import."""

PROXY_MAY_IMPORT_FROM_HANDLERS = ("handlers.api", "handlers.registry", "handlers.admission")


def imported_modules(path: Path) -> set[str]:
    """Modules a file imports, by their dotted names (``from a import b`` gives ``a`` and ``a.b``:
    ``b`` may be a module). The project uses absolute imports only."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in (*PRODUCTION, "devtools", "bench")
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each project module -> the project modules it imports."""
    return {
        name: imported_modules(path) & modules.keys() - {name} for name, path in modules.items()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def top(modules: Iterable[str]) -> set[str]:
    return {module.split(".")[0] for module in modules}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_one_way(layer: str) -> None:
    violations = [
        f"{path.relative_to(ROOT)} imports {sorted(top(imported_modules(path)) & FORBIDDEN[layer])}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        if top(imported_modules(path)) & FORBIDDEN[layer]
    ]
    assert violations == []


def test_no_import_circles_anywhere() -> None:
    assert circles(import_graph(project_modules())) == []


def imports_from(folder: str, package: str, allowed: tuple[str, ...]) -> list[str]:
    """Imports of ``package``'s modules by the files under ``folder``, but for ``allowed``."""
    return [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for module in sorted(imported_modules(path))
        if module.split(".")[0] == package and not module.startswith(allowed)
    ]


def test_the_proxy_reaches_the_kinds_only_through_the_registry() -> None:
    assert imports_from("proxy", "handlers", PROXY_MAY_IMPORT_FROM_HANDLERS) == []


def test_the_vocabulary_imports_nothing_above_it() -> None:
    assert imports_from("handlers/api", "handlers", ("handlers.api",)) == []


def test_the_generic_verbs_never_name_a_kind() -> None:
    others = ("handlers.api", "handlers.owned")
    assert imports_from("handlers/owned", "handlers", others) == []


def test_the_bench_takes_from_the_tests_only_the_world_around_the_server() -> None:
    assert imports_from("bench", "tests", ("tests.fakes", "tests.support.postgres")) == []


@pytest.mark.parametrize("plural", [served.kind.plural for served in registry()])
def test_a_kinds_init_only_declares(plural: str) -> None:
    """Its verb modules become attributes of the package (``list`` among them): code in the
    ``__init__`` would see them in place of the builtins, so it holds none."""
    path = ROOT / "handlers" / plural / "__init__.py"
    body = ast.parse(path.read_text()).body
    kinds_of_statement = {
        type(node).__name__
        for node in body
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
    }
    assert kinds_of_statement <= {"Import", "ImportFrom", "Assign"}
    assigned = {
        target.id
        for node in body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert assigned == {"KIND"}


def test_the_checks_see_a_violation_and_a_circle(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from proxy.app import create_app\nimport handlers.registry\n")
    assert top(imported_modules(bad)) == {"proxy", "handlers"}
    assert "proxy.app.create_app" in imported_modules(bad)
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
