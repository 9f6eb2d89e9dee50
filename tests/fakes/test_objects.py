"""The fake cluster's Tasks and Events behave as kube-apiserver serves them (over real HTTPS)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests

from tests.fakes.cluster import FakeCluster
from tests.fakes.errors import StatusError
from tests.fakes.objects import EVENTS, GENERATE_NAME_ATTEMPTS, NAMESPACES, TASKS

TASKS_PATH = "/apis/example.example.com/v1"


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    with FakeCluster() as running:
        running.objects.bookmark_seconds = 0.2
        yield running


@pytest.fixture
def http(fake: FakeCluster) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = fake.ca_file
    session.headers["Authorization"] = f"Bearer {fake.token}"
    return session


def task(name: str, namespace: str = "ns", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"priority": 1, "deadline": "2026-01-01T00:00:00Z"},
    }


def lines(response: requests.Response, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in response.iter_lines(chunk_size=1):
        if line:
            out.append(orjson.loads(line))
        if len(out) == count:
            break
    return out


def test_list_with_selectors_and_pages(fake: FakeCluster, http: requests.Session) -> None:
    for i in range(5):
        fake.objects.put(TASKS, task(f"t{i}", tier="web" if i % 2 else "db"))
    fake.objects.put(TASKS, task("elsewhere", "other"))
    url = f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks"
    web = http.get(url, params={"labelSelector": "tier in (web)"}).json()
    assert [i["metadata"]["name"] for i in web["items"]] == ["t1", "t3"]
    assert web["kind"] == "TaskList" and web["metadata"]["resourceVersion"] == "6"
    first = http.get(url, params={"limit": "3"}).json()
    rest = http.get(url, params={"limit": "3", "continue": first["metadata"]["continue"]}).json()
    names = [i["metadata"]["name"] for i in first["items"] + rest["items"]]
    assert names == ["t0", "t1", "t2", "t3", "t4"] and "continue" not in rest["metadata"]
    everywhere = http.get(
        f"{fake.url}{TASKS_PATH}/tasks", params={"fieldSelector": "spec.priority=1"}
    )
    assert len(everywhere.json()["items"]) == 6
    bad = http.get(url, params={"fieldSelector": "spec.nothing=1"})
    assert bad.status_code == 400
    assert fake.count("GET", rf"{TASKS_PATH}(/namespaces/ns)?/tasks", watch=False) == 5


def test_watch_from_zero_from_a_version_and_too_old(
    fake: FakeCluster, http: requests.Session
) -> None:
    first = fake.objects.put(TASKS, task("a"))
    url = f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks"
    from_zero = http.get(url, params={"watch": "true", "timeoutSeconds": "5"}, stream=True)
    version = first["metadata"]["resourceVersion"]
    from_n = http.get(
        url, params={"watch": "1", "resourceVersion": version, "timeoutSeconds": "5"}, stream=True
    )
    fake.objects.put(TASKS, task("b"))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines(from_zero, 2)] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
    ]
    assert [e["object"]["metadata"]["name"] for e in lines(from_n, 1)] == ["b"]
    fake.objects.compact()
    old = http.get(url, params={"watch": "true", "resourceVersion": version}, stream=True)
    (error,) = lines(old, 1)
    assert error["type"] == "ERROR" and error["object"]["code"] == 410
    assert fake.count("GET", rf"{TASKS_PATH}/namespaces/ns/tasks", watch=True) == 3


def test_watch_bookmarks_timeout_and_selector_transitions(
    fake: FakeCluster, http: requests.Session
) -> None:
    url = f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks"
    params = {
        "watch": "true",
        "labelSelector": "tier=web",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "1",
    }
    watch = http.get(url, params=params, stream=True)
    created = fake.objects.put(TASKS, task("a", tier="web"))
    moved = {**created, "metadata": {**created["metadata"], "labels": {"tier": "db"}}}
    fake.objects.update(TASKS, "ns", "a", moved)
    seen = [orjson.loads(line) for line in watch.iter_lines() if line]  # ends at the timeout
    kinds = [e["type"] for e in seen if e["type"] != "BOOKMARK"]
    assert kinds == ["ADDED", "DELETED"]
    assert any(e["type"] == "BOOKMARK" for e in seen)


def test_delete_with_finalizers_waits_for_their_removal(
    fake: FakeCluster, http: requests.Session
) -> None:
    held = task("held")
    held["metadata"]["finalizers"] = ["example.example.com/finalizer"]
    fake.objects.put(TASKS, held)
    url = f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks/held"
    deleting = http.delete(url).json()
    assert deleting["metadata"]["deletionTimestamp"] and deleting["metadata"]["generation"] == 2
    assert http.get(url).status_code == 200
    released = http.patch(
        url,
        data=orjson.dumps({"metadata": {"finalizers": None}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert released.status_code == 200
    gone = http.get(url)
    assert (gone.status_code, gone.json()["reason"]) == (404, "NotFound")


def test_events_are_created_with_generate_name_and_conflicts_are_409(
    fake: FakeCluster, http: requests.Session
) -> None:
    url = f"{fake.url}/api/v1/namespaces/ns/events"
    body = {"metadata": {"generateName": "t."}, "reason": "TaskCreated", "count": 1}
    created = http.post(url, json=body)
    assert created.status_code == 201
    name = created.json()["metadata"]["name"]
    assert name.startswith("t.") and fake.objects.get(EVENTS, "ns", name) is not None
    stale = created.json()
    stale["count"] = 2
    assert http.put(f"{url}/{name}", json=stale).status_code == 200
    conflict = http.put(f"{url}/{name}", json=stale)
    assert (conflict.status_code, conflict.json()["reason"]) == (409, "Conflict")


def test_a_generated_name_that_collides_is_drawn_again_up_to_kubes_eight_attempts(
    fake: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kube: "Each attempt uses a newly randomly generated name"."""
    event = {"metadata": {"generateName": "t.", "namespace": "ns"}, "reason": "R"}
    monkeypatch.setattr("secrets.choice", lambda alphabet: "b")
    assert fake.objects.put(EVENTS, event)["metadata"]["name"] == "t.bbbbb"
    draws = iter(["b"] * 5 * (GENERATE_NAME_ATTEMPTS - 1) + ["c"] * 5)
    monkeypatch.setattr("secrets.choice", lambda alphabet: next(draws))
    assert fake.objects.put(EVENTS, event)["metadata"]["name"] == "t.ccccc"
    monkeypatch.setattr("secrets.choice", lambda alphabet: "b")
    with pytest.raises(StatusError) as refused:
        fake.objects.put(EVENTS, event)
    assert (refused.value.code, refused.value.reason) == (409, "AlreadyExists")


def test_cut_watches_ends_open_streams(fake: FakeCluster, http: requests.Session) -> None:
    watch = http.get(f"{fake.url}/api/v1/events", params={"watch": "true"}, stream=True)
    ended = threading.Event()

    def read() -> None:
        for _ in watch.iter_lines():
            pass
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    fake.objects.cut_watches()
    assert ended.wait(5)


def test_a_label_value_over_63_characters_is_refused_as_kube_refuses_it(
    fake: FakeCluster, http: requests.Session
) -> None:
    url = f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks"
    too_long = "v" * 64
    refused = http.post(url, json=task("long", team=too_long))
    assert refused.status_code == 422
    assert refused.json()["message"] == (
        f'Task.example.example.com "long" is invalid: metadata.labels: Invalid value: '
        f'"{too_long}": must be no more than 63 characters'
    )
    assert http.post(url, json=task("fits", team="v" * 63)).status_code == 201
    current = http.get(f"{url}/fits").json()
    current["metadata"]["labels"]["team"] = "-starts-badly"
    assert http.put(f"{url}/fits", json=current).status_code == 422


NAMESPACES_PATH = "/api/v1/namespaces"


def test_namespaces_are_cluster_scoped_and_created_active(
    fake: FakeCluster, http: requests.Session
) -> None:
    """kube's namespace strategy: a new namespace is Active with the ``kubernetes`` finalizer
    in its spec; its path does not shadow the namespaced kinds' paths under it."""
    created = http.post(f"{fake.url}{NAMESPACES_PATH}", json={"metadata": {"name": "team"}})
    assert created.status_code == 201, created.text
    namespace = created.json()
    assert "namespace" not in namespace["metadata"]
    assert namespace["status"] == {"phase": "Active"}
    assert namespace["spec"] == {"finalizers": ["kubernetes"]}
    assert http.get(f"{fake.url}{NAMESPACES_PATH}/team").json()["metadata"]["name"] == "team"
    missing = http.get(f"{fake.url}{NAMESPACES_PATH}/nope")
    assert (missing.status_code, missing.json()["message"]) == (404, 'namespaces "nope" not found')
    assert http.get(f"{fake.url}/api/v1/namespaces/team/events").json()["items"] == []
    listed = http.get(
        f"{fake.url}{NAMESPACES_PATH}", params={"fieldSelector": "status.phase=Active"}
    )
    assert [n["metadata"]["name"] for n in listed.json()["items"]] == ["team"]
    resources = http.get(f"{fake.url}/api/v1").json()["resources"]
    assert {"name": "namespaces", "namespaced": False}.items() <= next(
        r for r in resources if r["name"] == "namespaces"
    ).items()


def test_a_deleted_namespace_terminates_until_finalized(
    fake: FakeCluster, http: requests.Session
) -> None:
    fake.objects.put(NAMESPACES, {"metadata": {"name": "going"}})
    watch = http.get(
        f"{fake.url}{NAMESPACES_PATH}",
        params={"watch": "true", "resourceVersion": str(fake.objects.revision)},
        stream=True,
        timeout=10,
    )
    deleted = http.delete(f"{fake.url}{NAMESPACES_PATH}/going")
    assert deleted.status_code == 200
    assert deleted.json()["status"] == {"phase": "Terminating"}
    assert deleted.json()["metadata"]["deletionTimestamp"]
    fake.objects.finalize_namespace("going")
    events = lines(watch, 2)
    watch.close()
    assert [(e["type"], e["object"]["status"]["phase"]) for e in events] == [
        ("MODIFIED", "Terminating"),
        ("DELETED", "Terminating"),
    ]
    assert http.get(f"{fake.url}{NAMESPACES_PATH}/going").status_code == 404
