"""Several pods: two server instances (separate gunicorn masters on their own ports) on one
PostgreSQL database serve the same data, and a write through one reaches watches on the
other within a second (each worker's fan-out reads the shared log every tick)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests

from tests.support.postgres import create_database, postgres_url_fixture  # noqa: F401
from tests.support.servers import Pki, Server, run_server

GV = "/apis/search.task.example.example.com/v1"
SPEC = {"priority": 3, "deadline": "2026-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
def instances(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    root = tmp_path_factory.mktemp("two-instances")
    pki = Pki.create(root / "pki")
    env = {"APISERVER_DATABASE_URL": create_database(postgres_url)}
    (root / "a").mkdir()
    (root / "b").mkdir()
    with (
        run_server(root / "a", pki=pki, env=env) as first,
        run_server(root / "b", pki=pki, env=env) as second,
    ):
        yield first, second


class Arrivals:
    """The events of a watch with the time each line arrived."""

    def __init__(self, session: requests.Session, url: str) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.response = session.get(
            url, params={"watch": "true", "timeoutSeconds": "20"}, stream=True, timeout=30
        )
        self.response.raise_for_status()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.response.iter_lines(chunk_size=1):
            if line:
                self.events.append((time.monotonic(), orjson.loads(line)))

    def first(self, kind: str, name: str, timeout: float = 10.0) -> float:
        """When the first ``kind`` event of ``name`` arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for arrived, event in list(self.events):
                if (event["type"], event["object"]["metadata"]["name"]) == (kind, name):
                    return arrived
            time.sleep(0.005)
        raise AssertionError(f"no {kind} {name} in {len(self.events)} events")


def test_both_instances_serve_the_same_objects(instances: tuple[Server, Server]) -> None:
    first, second = instances
    a, b = first.session(), second.session()
    url = f"{GV}/namespaces/shared/customtasks"
    created = a.post(f"{first.url}{url}", json={"metadata": {"name": "one"}, "spec": SPEC})
    assert created.status_code == 201, created.text
    got = b.get(f"{second.url}{url}/one")
    assert got.status_code == 200
    assert got.json()["metadata"]["uid"] == created.json()["metadata"]["uid"]
    stale = created.json()
    stale["spec"]["priority"] = 5
    assert b.put(f"{second.url}{url}/one", json=stale).status_code == 200
    stale["spec"]["priority"] = 6  # the old resourceVersion again, through the other instance
    conflict = a.put(f"{first.url}{url}/one", json=stale)
    assert (conflict.status_code, conflict.json()["reason"]) == (409, "Conflict")
    listed = a.get(f"{first.url}{url}").json()
    assert [i["spec"]["priority"] for i in listed["items"]] == [5]


def test_a_write_through_one_instance_reaches_watches_on_the_other_within_a_second(
    instances: tuple[Server, Server],
) -> None:
    first, second = instances
    url = f"{GV}/namespaces/crossing/customtasks"
    on_second = Arrivals(second.session(), f"{second.url}{url}")
    on_first = Arrivals(first.session(), f"{first.url}{url}")
    time.sleep(0.3)  # both watches subscribed
    a, b = first.session(), second.session()
    for name, (writer, base) in {"x": (a, first.url), "y": (b, second.url)}.items():
        sent = time.monotonic()
        r = writer.post(f"{base}{url}", json={"metadata": {"name": name}, "spec": SPEC})
        assert r.status_code == 201, r.text
        other = on_second if writer is a else on_first
        assert other.first("ADDED", name) - sent < 1.0
    deleted = a.delete(f"{first.url}{url}/y")
    assert deleted.status_code == 200
    assert on_second.first("DELETED", "y") > 0
    assert [e["object"]["metadata"]["name"] for _, e in on_second.events] == ["x", "y", "y"]


def test_a_watch_list_on_one_instance_pages_the_state_written_through_the_other(
    instances: tuple[Server, Server],
) -> None:
    """R6 on PostgreSQL: more objects than a page of the starting state (500), all ADDED at one
    revision, the initial-events-end BOOKMARK at that revision, then a later change."""
    first, second = instances
    url = f"{GV}/namespaces/watchlist/customtasks"
    writer = first.session()
    bodies = [{"metadata": {"name": f"t{n:04d}"}, "spec": SPEC} for n in range(620)]
    for body in bodies:
        assert writer.post(f"{first.url}{url}", json=body).status_code == 201
    response = second.session().get(
        f"{second.url}{url}",
        params={
            "watch": "1",
            "sendInitialEvents": "true",
            "resourceVersionMatch": "NotOlderThan",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "20",
        },
        stream=True,
        timeout=30,
    )
    lines: Iterator[dict[str, Any]] = (orjson.loads(line) for line in response.iter_lines() if line)
    added: list[dict[str, Any]] = []
    end: dict[str, Any] = {}
    for event in lines:
        if event["type"] == "BOOKMARK":
            end = event["object"]["metadata"]
            break
        added.append(event["object"]["metadata"])
    assert [m["name"] for m in added] == [f"t{n:04d}" for n in range(620)]
    assert end["annotations"] == {"k8s.io/initial-events-end": "true"}
    revision = int(end["resourceVersion"])
    assert revision >= max(int(m["resourceVersion"]) for m in added)
    patched = writer.patch(
        f"{first.url}{url}/t0007",
        data=orjson.dumps({"spec": {"priority": 9}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200
    change = next(e for e in lines if e["type"] != "BOOKMARK")
    response.close()
    assert (change["type"], change["object"]["metadata"]["name"]) == ("MODIFIED", "t0007")
    assert int(change["object"]["metadata"]["resourceVersion"]) > revision
