"""Paging with every selector shape: ``limit=7`` through 10,000 customtasks returns each match
exactly once, as it was when the first page was read, while every page is followed by
writes (a label flipped, a match deleted, a new match created)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import falcon.testing
import pytest

from handlers.registry import find
from proxy.app import create_app
from proxy.settings import Settings
from store.sqlite import SQLiteStore
from tests.conftest import AllowAll

PATH = "/apis/search.task.example.example.com/v1/namespaces/{}/customtasks"
COUNT = 10_000


def task(n: int) -> dict[str, object]:
    labels = {"n": str(n)}
    if n % 3:
        labels["tag"] = "needle" if n % 97 == 0 else "pin" if n % 89 == 0 else "hay"
    return {
        "apiVersion": "search.task.example.example.com/v1",
        "kind": "CustomTask",
        "metadata": {"name": f"t{n:05d}", "namespace": "ns", "labels": labels},
        "spec": {"priority": n % 5, "deadline": "2030-01-01T00:00:00Z"},
    }


SHAPES = {  # selector parameters -> which task numbers match
    "labelSelector=tag=needle": lambda n: n % 3 != 0 and n % 97 == 0,
    "labelSelector=tag in (needle,pin)": lambda n: n % 3 != 0 and (n % 97 == 0 or n % 89 == 0),
    "labelSelector=tag!=hay": lambda n: n % 3 == 0 or n % 97 == 0 or n % 89 == 0,
    "labelSelector=tag notin (hay,pin)": lambda n: n % 3 == 0 or n % 97 == 0,
    "labelSelector=tag": lambda n: n % 3 != 0,
    "labelSelector=!tag": lambda n: n % 3 == 0,
    "fieldSelector=spec.priority=3": lambda n: n % 5 == 3,
    "fieldSelector=spec.priority!=3": lambda n: n % 5 != 3,
    "labelSelector=tag=needle&fieldSelector=spec.priority=2": lambda n: (
        n % 3 != 0 and n % 97 == 0 and n % 5 == 2
    ),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 customtasks, stored as the create handler stores them (through the store: ten
    thousand requests would take a minute), in a file each test copies."""
    path = tmp_path_factory.mktemp("paged") / "store.db"
    store = SQLiteStore(str(path))
    served = find("customtasks")
    assert served is not None
    for n in range(COUNT):
        obj = task(n)
        server_set = {"uid": f"uid-{n}", "creationTimestamp": "2026-12-01T00:00:00Z"}
        obj["metadata"] = {**obj["metadata"], **server_set, "generation": 1}  # type: ignore[dict-item]
        store.create("customtasks", "ns", f"t{n:05d}", obj, served.kind.field_values(obj))
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.mark.parametrize("selector", list(SHAPES))
def test_paging_by_seven_under_writes_returns_each_match_once(
    template: Path, tmp_path: Path, selector: str
) -> None:
    path = tmp_path / "store.db"
    shutil.copyfile(template, path)
    client = falcon.testing.TestClient(
        create_app(Settings.from_env({"APISERVER_SQLITE_PATH": str(path)}), authorizer=AllowAll())
    )
    url = PATH.format("ns")
    query = f"{selector}&limit=7"
    first = client.simulate_get(url, query_string=query)
    assert first.status_code == 200, first.text
    at = first.json["metadata"]["resourceVersion"]
    seen = [item["metadata"]["name"] for item in first.json["items"]]
    token = first.json["metadata"].get("continue")
    written = 0
    while token:
        # writes after the first page: none of them may show in the pages that follow
        victim = f"t{COUNT - 1 - written:05d}"
        new = {**task(97 * 3), "metadata": {"name": f"new{written}", "labels": {"tag": "needle"}}}
        assert client.simulate_delete(f"{url}/{victim}").status_code == 200
        assert client.simulate_post(url, json=new).status_code == 201
        flipped = client.simulate_patch(
            f"{url}/{seen[-1]}",
            body=b'{"metadata": {"labels": {"tag": "flipped"}}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        deleted = int(seen[-1][1:]) >= COUNT - 1 - written  # a victim of this loop
        assert flipped.status_code == (404 if deleted else 200)
        written += 1
        page = client.simulate_get(url, query_string=f"{query}&continue={token}")
        assert page.status_code == 200, page.text
        assert page.json["metadata"]["resourceVersion"] == at
        assert len(page.json["items"]) <= 7
        seen += [item["metadata"]["name"] for item in page.json["items"]]
        token = page.json["metadata"].get("continue")
    assert seen == [f"t{n:05d}" for n in range(COUNT) if SHAPES[selector](n)]
