"""R6: watch over the real server (streaming through gunicorn) and in-process for compaction
(on both stores)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from tests.support.postgres import create_database, postgres_url_fixture  # noqa: F401
from tests.support.servers import Server, run_server

GV = "/apis/search.task.example.example.com/v1"
SPEC = {"priority": 1, "deadline": "2026-01-01T00:00:00Z"}
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


class Watch:
    """A watch request read line by line in a background thread."""

    def __init__(self, session: requests.Session, url: str, **params: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.done = threading.Event()
        self.error: Exception | None = None
        headers = {"Accept": params.pop("accept", "application/json")}
        params.setdefault("timeoutSeconds", "3")  # the server ends it: no client-side cut
        self.response = session.get(
            url, params={"watch": "true", **params}, headers=headers, stream=True, timeout=30
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines():
                if line:
                    self.events.append(orjson.loads(line))
        except Exception as ex:
            self.error = ex
        finally:
            self.done.set()

    def wait_for(self, count: int, timeout: float = 10) -> list[tuple[str, str]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.summary()

    def summary(self) -> list[tuple[str, str]]:
        return [(e["type"], _name(e["object"])) for e in self.events]

    def close(self) -> None:
        """Wait for the server to end the stream, which must end cleanly."""
        assert self.done.wait(10)
        assert self.error is None
        self.response.close()


def _name(obj: dict[str, Any]) -> str:
    if obj.get("kind") == "Table":
        return str(obj["rows"][0]["cells"][0])
    return str(obj.get("metadata", {}).get("name", ""))


def create(s: requests.Session, url: str, name: str, **labels: str) -> dict[str, Any]:
    r = s.post(url, json={"metadata": {"name": name, "labels": labels}, "spec": SPEC}, timeout=10)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
def ns(server: Server, request: pytest.FixtureRequest) -> str:
    return f"{server.url}{GV}/namespaces/w-{request.node.name[:40].replace('_', '-')}/customtasks"


def test_r6_headers_come_at_once_then_synthetic_added_and_live_changes(
    server: Server, ns: str
) -> None:
    s = server.session()
    create(s, ns, "a")
    started = time.monotonic()
    watch = Watch(s, ns)
    assert time.monotonic() - started < 2  # headers flushed before any change
    assert watch.response.headers["Content-Type"] == "application/json"
    assert watch.wait_for(1) == [("ADDED", "a")]
    b = create(s, ns, "b")
    patched = {**b, "spec": {**b["spec"], "priority": 9}}
    assert s.put(f"{ns}/b", json=patched, timeout=10).status_code == 200
    assert s.delete(f"{ns}/a", timeout=10).status_code == 200
    assert watch.wait_for(4) == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("MODIFIED", "b"),
        ("DELETED", "a"),
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in watch.events]
    assert versions == sorted(versions)
    watch.close()


def test_r6_resource_version_n_gives_exactly_the_changes_after_n(server: Server, ns: str) -> None:
    s = server.session()
    create(s, ns, "old")
    listed = s.get(ns, timeout=10).json()["metadata"]["resourceVersion"]
    create(s, ns, "new")
    watch = Watch(s, ns, resourceVersion=listed)
    assert watch.wait_for(1) == [("ADDED", "new")]
    time.sleep(0.3)
    assert watch.summary() == [("ADDED", "new")]
    watch.close()


def test_r6_selectors_turn_entering_and_leaving_into_added_and_deleted(
    server: Server, ns: str
) -> None:
    s = server.session()
    watch = Watch(
        s,
        ns,
        labelSelector="tier=web",
        resourceVersion=s.get(ns).json()["metadata"]["resourceVersion"],
    )
    obj = create(s, ns, "x", tier="db")
    obj = s.put(
        f"{ns}/x", json={**obj, "metadata": {**obj["metadata"], "labels": {"tier": "web"}}}
    ).json()
    s.put(f"{ns}/x", json={**obj, "metadata": {**obj["metadata"], "labels": {"tier": "db"}}})
    assert watch.wait_for(2) == [("ADDED", "x"), ("DELETED", "x")]
    named = Watch(s, ns, fieldSelector="metadata.name=y", resourceVersion="0")
    create(s, ns, "z")
    create(s, ns, "y")
    assert named.wait_for(1) == [("ADDED", "y")]
    watch.close()
    named.close()


def test_r6_bookmarks_only_when_asked_and_timeout_ends_the_stream(server: Server, ns: str) -> None:
    s = server.session()
    plain = Watch(s, ns, timeoutSeconds="2")
    marked = Watch(s, ns, timeoutSeconds="2", allowWatchBookmarks="true")
    assert plain.done.wait(10) and marked.done.wait(10)
    assert plain.error is None and marked.error is None
    assert plain.events == []
    assert {e["type"] for e in marked.events} == {"BOOKMARK"}
    bookmark = marked.events[0]["object"]
    assert bookmark["kind"] == "CustomTask" and int(bookmark["metadata"]["resourceVersion"]) > 0


def test_r6_table_watch_sends_columns_only_first(server: Server, ns: str) -> None:
    s = server.session()
    create(s, ns, "t1")
    create(s, ns, "t2")
    watch = Watch(s, ns, accept=TABLE)
    assert watch.wait_for(2) == [("ADDED", "t1"), ("ADDED", "t2")]
    first, second = (e["object"] for e in watch.events)
    assert first["kind"] == "Table" and first["columnDefinitions"][0]["name"] == "Name"
    assert "columnDefinitions" not in second
    watch.close()


def test_shutdown_ends_open_watches_cleanly(tmp_path: Path) -> None:
    with run_server(tmp_path, workers=1) as server:
        s = server.session()
        watch = Watch(s, f"{server.url}{GV}/clustertasks", timeoutSeconds="600")
        time.sleep(0.5)
        started = time.monotonic()
        server.process.terminate()
        assert watch.done.wait(15)
        assert watch.error is None  # the stream ended with its final chunk, not cut
        assert time.monotonic() - started < 5  # well before gunicorn's graceful timeout
