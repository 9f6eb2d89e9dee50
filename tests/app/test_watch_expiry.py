"""R6: a watch from a compacted resourceVersion is one ERROR event 410, on both stores."""

from __future__ import annotations

from pathlib import Path

import orjson
from falcon import testing

from handlers import kinds, watching
from handlers.contract import ApiRequest, Deps
from proxy.app import create_app
from proxy.settings import Settings
from store.postgres import PostgresStore
from store.sqlite import SQLiteStore
from tests.conftest import AllowAll
from tests.support.postgres import create_database, postgres_url_fixture  # noqa: F401

GV = "/apis/search.task.example.example.com/v1"
SPEC = {"priority": 1, "deadline": "2026-01-01T00:00:00Z"}


def test_r6_too_old_resource_version_is_one_error_event_410(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    settings = Settings.from_env({"APISERVER_SQLITE_PATH": str(tmp_path / "s.db")})
    app = create_app(settings, store=store, authorizer=AllowAll())
    client = testing.TestClient(app)
    path = f"{GV}/clustertasks"
    for name in ("a", "b", "c"):
        client.simulate_post(path, body=orjson.dumps({"metadata": {"name": name}, "spec": SPEC}))
    store.compact(min_age_seconds=0, min_revisions=1)
    result = client.simulate_get(path, params={"watch": "true", "resourceVersion": "1"})
    lines = [orjson.loads(line) for line in result.content.splitlines() if line]
    assert len(lines) == 1
    assert lines[0]["type"] == "ERROR"
    status = lines[0]["object"]
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"] == "too old resource version: 1 (2)"


def test_r6_too_old_resource_version_on_postgresql_is_the_same_410(postgres_url: str) -> None:
    store = PostgresStore(create_database(postgres_url))
    try:
        for name in ("a", "b", "c"):
            store.create("clustertasks", "", name, {"metadata": {"name": name}}, {})
        store.compact(min_age_seconds=0, min_revisions=1)
        kind = kinds.find("clustertasks")
        assert kind is not None
        request = ApiRequest(kind, "watch", None, None, {"resourceVersion": "1"})
        result = watching.watch(request, Deps(store), None)
        (event,) = list(result.begin())
        status = orjson.loads(event.body)
        assert (event.type, status["code"], status["reason"]) == ("ERROR", 410, "Expired")
        assert status["message"] == "too old resource version: 1 (2)"
        assert result.follower.expired
    finally:
        store.close()
