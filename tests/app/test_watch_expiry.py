"""R6: a watch from a compacted resourceVersion is one ERROR event 410: through the app, and
from the fan-out on both stores."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from falcon import testing

from handlers.api.contract import ApiRequest, Deps
from handlers.owned import watch as owned_watch
from handlers.registry import find
from proxy.app import create_app
from proxy.fanout import FanOut
from proxy.settings import Settings
from store import Store
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


@pytest.fixture(params=["sqlite", "postgresql"])
def compacted(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store of either kind whose log no longer holds revision 1."""
    if request.param == "sqlite":
        store: Store = SQLiteStore(str(tmp_path / "s.db"))
    else:
        store = PostgresStore(create_database(request.getfixturevalue("postgres_url")))
    try:
        for name in ("a", "b", "c"):
            store.create("clustertasks", "", name, {"metadata": {"name": name}}, {})
        store.compact(min_age_seconds=0, min_revisions=1)
        yield store
    finally:
        store.close()


def test_r6_the_fan_out_ends_a_watch_from_a_compacted_revision_with_410(compacted: Store) -> None:
    served = find("clustertasks")
    assert served is not None
    request = ApiRequest(served.kind, "watch", None, None, {"resourceVersion": "1"})
    # Read the log only when asked, and not at all once the test is done with the store.
    fan = FanOut(compacted, threading.Event(), max_watches=1, interval=3600)
    watch = fan.subscribe(owned_watch.handle(request, Deps(compacted)))
    try:
        (event,) = list(fan.begin(watch))
    finally:
        fan.stop()
    status = orjson.loads(event.body)
    assert (event.type, status["code"], status["reason"]) == ("ERROR", 410, "Expired")
    assert status["message"] == "too old resource version: 1 (2)"
    assert watch.expired  # the stream ends after the ERROR: nothing is carried live
