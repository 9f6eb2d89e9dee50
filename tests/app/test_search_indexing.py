"""What the API's writes do to the search index: a created task is found by its details, an
update replaces what is found (the latest generation), a dry run and a failed write leave
nothing, a deleted task leaves at once; for namespaced and cluster-scoped kinds."""

from __future__ import annotations

from pathlib import Path

import orjson
from falcon import testing

from proxy.app import create_app
from proxy.settings import Settings
from store.search import parse
from store.sqlite import SQLiteStore
from tests.conftest import AllowAll

GV = "/apis/search.task.example.example.com/v1"
CUSTOM = f"{GV}/namespaces/team/customtasks"
CLUSTER = f"{GV}/clustertasks"


def task(name: str, details: str, priority: int = 3) -> bytes:
    spec = {"priority": priority, "deadline": "2030-01-01T00:00:00Z", "details": details}
    return orjson.dumps({"metadata": {"name": name}, "spec": spec})


def test_writes_through_the_api_keep_the_index(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    settings = Settings.from_env({"APISERVER_SQLITE_PATH": str(tmp_path / "s.db")})
    client = testing.TestClient(create_app(settings, store=store, authorizer=AllowAll()))

    def found(text: str) -> list[tuple[str, str, str, int, int | None]]:
        return [
            (h.kind, h.namespace, h.name, h.generation, h.priority)
            for h in store.search(parse(text), 100)
        ]

    assert client.simulate_post(CUSTOM, body=task("a", "rebuild the shards")).status_code == 201
    assert client.simulate_post(CLUSTER, body=task("b", "shards again", 7)).status_code == 201
    assert sorted(found("shards")) == [
        ("clustertask", "", "b", 1, 7),
        ("customtask", "team", "a", 1, 3),
    ]

    dry = client.simulate_post(CUSTOM, body=task("c", "dry shards"), params={"dryRun": "All"})
    assert dry.status_code == 201 and found("dry") == []
    taken = client.simulate_post(CUSTOM, body=task("a", "a second a"))
    assert taken.status_code == 409 and found("second") == []

    patched = client.simulate_patch(
        f"{CUSTOM}/a",
        body=orjson.dumps({"spec": {"details": "page the on-call"}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200
    assert found("+name:a") == [("customtask", "team", "a", 2, 3)]  # the new generation only
    assert found("rebuild") == [] and found('"page the on-call"') != []

    status = client.simulate_patch(
        f"{CUSTOM}/a/status",
        body=orjson.dumps({"status": {"note": "x"}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert status.status_code == 200 and found("+name:a")[0][3] == 2

    assert client.simulate_delete(f"{CUSTOM}/a").status_code == 200
    assert client.simulate_delete(f"{CLUSTER}/b").status_code == 200
    assert found("+generation:>=0") == []
