"""The layering rule of the design: imports point one way.

``proxy -> handlers -> (store, k8s)`` and ``proxy -> k8s``; ``store/`` and ``k8s/`` never
import ``proxy/`` or ``handlers/``, and ``handlers/`` never imports ``proxy/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.servers import ROOT

FORBIDDEN = {
    "handlers": {"proxy"},
    "store": {"proxy", "handlers"},
    "k8s": {"proxy", "handlers"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages a module imports (absolute imports only; the project uses no others)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            found.add((node.module or "").split(".")[0])
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_one_way(layer: str) -> None:
    violations = [
        f"{path.relative_to(ROOT)} imports {sorted(imported_packages(path) & FORBIDDEN[layer])}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        if imported_packages(path) & FORBIDDEN[layer]
    ]
    assert violations == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from proxy.app import create_app\nimport handlers.kinds\n")
    assert imported_packages(bad) == {"proxy", "handlers"}
