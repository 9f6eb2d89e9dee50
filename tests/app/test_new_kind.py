"""A new stored kind is one package: its ``__init__`` declares it, its verb modules are one line
each, and its own rules live in its strategy. The Note kind of ``tests/app/newkinds`` is served
next to the real kinds, with no change anywhere else."""

from __future__ import annotations

import ast
from pathlib import Path

import orjson
import pytest
from falcon.testing import Result, TestClient

from handlers.api.kind import Kind
from handlers.api.strategy import StatusStrategy, Strategy
from handlers.registry import VERBS, kinds_in, registry
from proxy.app import create_app
from proxy.settings import Settings
from tests.conftest import AllowAll
from tests.support.servers import ROOT

GV = "search.task.example.example.com/v1"
NOTES = f"/apis/{GV}/namespaces/ns/notes"
PACKAGE = ROOT / "tests" / "app" / "newkinds" / "notes"


@pytest.fixture
def notes(tmp_path: Path) -> TestClient:
    settings = Settings.from_env({"APISERVER_SQLITE_PATH": str(tmp_path / "store.db")})
    kinds = registry() + kinds_in("tests.app.newkinds")
    return TestClient(create_app(settings, authorizer=AllowAll(), kinds=kinds))


def note(name: str, text: str, author: str = "ann") -> bytes:
    return orjson.dumps({"metadata": {"name": name}, "spec": {"text": text, "author": author}})


def reason(result: Result) -> tuple[int, str]:
    return result.status_code, result.json["reason"]


def test_the_kinds_verb_modules_are_one_line_each() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        if path.stem not in VERBS:
            continue
        body = ast.parse(path.read_text()).body
        code = [
            node
            for node in body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
            and not (isinstance(node, ast.Assign) and ast.unparse(node) == "__all__ = ['handle']")
        ]
        assert [ast.unparse(node) for node in code] == [
            f"from handlers.owned.{path.stem} import handle"
        ]


def test_d1_discovery_and_openapi_name_the_new_kind_with_its_verbs(notes: TestClient) -> None:
    resources = {r["name"]: r for r in notes.simulate_get(f"/apis/{GV}").json["resources"]}
    assert resources["notes"]["verbs"] == sorted(
        ("create", "delete", "get", "list", "patch", "update", "watch")
    )
    assert "notes/status" not in resources  # no status/ package: no subresource
    assert "customtasks" in resources
    schemas = orjson.loads(notes.simulate_get(f"/openapi/v3/apis/{GV}").content)["components"]
    assert "com.example.example.task.search.v1.Note" in schemas["schemas"]


def test_the_strategy_prepares_validates_and_canonicalizes(notes: TestClient) -> None:
    created = notes.simulate_post(NOTES, body=note("n", "three short words"))
    assert created.status_code == 201
    assert created.json["spec"]["words"] == 3  # canonicalize: the server's count
    blank = notes.simulate_post(NOTES, body=note("blank", "   "))
    assert reason(blank) == (422, "Invalid")
    assert blank.json["message"] == (
        'Note.search.task.example.example.com "blank" is invalid: '
        'spec.text: Invalid value: "   ": must not be blank'
    )
    assert notes.simulate_get(f"{NOTES}/blank").status_code == 404  # nothing half-written
    moved = notes.simulate_patch(
        f"{NOTES}/n",
        body=orjson.dumps({"spec": {"author": "bob"}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert reason(moved) == (422, "Invalid")
    assert moved.json["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "bob": field is immutable',
            "field": "spec.author",
        }
    ]
    edited = notes.simulate_patch(
        f"{NOTES}/n",
        body=orjson.dumps({"spec": {"text": "now four words here"}, "status": {"read": True}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert edited.status_code == 200
    assert edited.json["spec"]["words"] == 4
    assert edited.json["metadata"]["generation"] == 2
    assert edited.json["status"] == {"read": True}  # no status subresource: written with the rest


def test_table_columns_come_from_the_declaration(notes: TestClient) -> None:
    notes.simulate_post(NOTES, body=note("n", "a b"))
    table = notes.simulate_get(
        NOTES, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    ).json
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Words", "Age"]
    assert table["rows"][0]["cells"][:2] == ["n", 2]


def test_a_kind_whose_strategies_do_not_match_its_subresources_fails_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "mismatched"
    (package / "things").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "things" / "__init__.py").write_text(
        "from tests.app.test_new_kind import thing_kind\nKIND = thing_kind()\n"
    )
    (package / "things" / "get.py").write_text("from handlers.owned.get import handle\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match=r"strategies \['', 'status'\] do not match"):
        kinds_in("mismatched")


def thing_kind() -> Kind:
    """A kind declaring a status strategy without a ``status/`` package."""
    return Kind(
        plural="things",
        singular="thing",
        kind="Thing",
        namespaced=True,
        description="",
        spec_schema={"type": "object"},
        columns=(),
        strategies={"": Strategy(), "status": StatusStrategy()},
    )
