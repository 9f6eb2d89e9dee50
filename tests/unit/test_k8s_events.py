"""k8s.events (Events of Tasks, batched per namespace) and Cluster.watch, against ``responses``."""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
import responses

from k8s.client import Cluster, ClusterError
from k8s.events import TASK_UID, TaskEvents

SERVER = "https://127.0.0.1:6443"  # never contacted: responses answers every call
NAMESPACED = re.compile(rf"{SERVER}/api/v1/namespaces/(\w+)/events")
EVERYWHERE = f"{SERVER}/api/v1/events"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def cluster() -> Cluster:
    return Cluster(SERVER, authorization=lambda: "Bearer t")


def query(request: requests.PreparedRequest) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(str(request.url)).query))


def event(namespace: str, task: str, name: str, first: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "labels": {TASK_UID: task},
        },
        "reason": "TaskCreated",
        "firstTimestamp": first,
    }


def event_list(*events: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": list(events)}


def answer_by_namespace(
    mocked: responses.RequestsMock, events: list[dict[str, Any]], delay: float = 0.0
) -> None:
    def reply(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        time.sleep(delay)
        match = NAMESPACED.match(request.url or "")
        assert match is not None
        mine = [e for e in events if e["metadata"]["namespace"] == match.group(1)]
        return 200, {}, orjson.dumps(event_list(*mine))

    mocked.add_callback(responses.GET, NAMESPACED, callback=reply)


def test_one_list_per_namespace_by_label_presence_grouped_oldest_first(
    mocked: responses.RequestsMock, cluster: Cluster
) -> None:
    events = [
        event("a", "t1", "late", "2026-01-01T00:00:05Z"),
        event("a", "t1", "early", "2026-01-01T00:00:01Z"),
        event("a", "t2", "other", "2026-01-01T00:00:02Z"),
    ]
    answer_by_namespace(mocked, events)
    cache = TaskEvents(cluster, ttl=60)
    first = cache.in_namespace("a")
    assert {task: [e["metadata"]["name"] for e in es] for task, es in first.items()} == {
        "t1": ["early", "late"],
        "t2": ["other"],
    }
    assert cache.in_namespace("a") == first
    assert len(mocked.calls) == 1
    assert query(mocked.calls[0].request) == {"labelSelector": TASK_UID}


def test_entries_expire_after_the_ttl(mocked: responses.RequestsMock, cluster: Cluster) -> None:
    answer_by_namespace(mocked, [])
    cache = TaskEvents(cluster, ttl=0.5)  # room for a loaded machine between the first two
    cache.in_namespace("a")
    cache.in_namespace("a")
    time.sleep(0.6)
    cache.in_namespace("a")
    assert len(mocked.calls) == 2


def test_concurrent_misses_for_one_namespace_make_one_list(
    mocked: responses.RequestsMock, cluster: Cluster
) -> None:
    answer_by_namespace(mocked, [event("a", "t1", "e", "2026-01-01T00:00:00Z")], delay=0.2)
    cache = TaskEvents(cluster, ttl=60)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(len(cache.in_namespace("a"))))
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [1] * 20
    assert len(mocked.calls) == 1


def test_a_failed_list_is_remembered_briefly(
    mocked: responses.RequestsMock, cluster: Cluster
) -> None:
    mocked.add(responses.GET, NAMESPACED, json={"kind": "Status", "code": 503}, status=503)
    cache = TaskEvents(cluster, ttl=60, failure_ttl=0.1)
    for _ in range(3):
        with pytest.raises(ClusterError) as failed:
            cache.in_namespace("a")
        assert failed.value.status == 503
    assert len(mocked.calls) == 1
    time.sleep(0.15)
    with pytest.raises(ClusterError):
        cache.in_namespace("a")
    assert len(mocked.calls) == 2


def test_one_cluster_wide_list_fills_every_namespace_asked_for(
    mocked: responses.RequestsMock, cluster: Cluster
) -> None:
    mocked.add(
        responses.GET,
        EVERYWHERE,
        json=event_list(
            event("a", "t1", "e1", "2026-01-01T00:00:00Z"),
            event("b", "t2", "e2", "2026-01-01T00:00:00Z"),
        ),
    )
    answer_by_namespace(mocked, [])
    cache = TaskEvents(cluster, ttl=60)
    everywhere = cache.everywhere(["a", "b", "quiet"])
    assert {ns: sorted(by_task) for ns, by_task in everywhere.items()} == {
        "a": ["t1"],
        "b": ["t2"],
        "quiet": [],
    }
    assert cache.in_namespace("a")["t1"][0]["metadata"]["name"] == "e1"
    assert cache.in_namespace("quiet") == {}
    assert [str(call.request.url).split("?")[0] for call in mocked.calls] == [EVERYWHERE]


def test_events_seen_by_a_watch_update_the_cached_entry(
    mocked: responses.RequestsMock, cluster: Cluster
) -> None:
    answer_by_namespace(mocked, [event("a", "t1", "e1", "2026-01-01T00:00:01Z")])
    cache = TaskEvents(cluster, ttl=60)
    cache.in_namespace("a")
    newer = event("a", "t1", "e2", "2026-01-01T00:00:02Z")
    assert cache.observe("ADDED", newer) == "t1"
    assert [e["metadata"]["name"] for e in cache.in_namespace("a")["t1"]] == ["e1", "e2"]
    assert cache.observe("DELETED", newer) == "t1"
    assert [e["metadata"]["name"] for e in cache.in_namespace("a")["t1"]] == ["e1"]
    assert cache.observe("ADDED", {"metadata": {"name": "unlabelled"}}) is None
    assert len(mocked.calls) == 1


def test_watch_yields_each_line_as_an_event_and_passes_parameters(
    mocked: responses.RequestsMock, cluster: Cluster
) -> None:
    lines = [{"type": "ADDED", "object": {"n": 1}}, {"type": "DELETED", "object": {"n": 2}}]
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    mocked.add(responses.GET, f"{SERVER}/api/v1/events", body=body)
    stream = cluster.watch("/api/v1/events", {"resourceVersion": "5"}, idle_timeout=3)
    assert list(stream) == lines
    request = mocked.calls[0].request
    assert query(request) == {"resourceVersion": "5", "watch": "true"}
    assert request.req_kwargs["timeout"] == (3, 3)  # type: ignore[attr-defined]


def test_watch_refused_by_the_cluster_raises_with_its_status(
    mocked: responses.RequestsMock, cluster: Cluster
) -> None:
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    mocked.add(responses.GET, f"{SERVER}/api/v1/events", json=gone, status=410)
    with pytest.raises(ClusterError) as refused:
        cluster.watch("/api/v1/events", {})
    assert (refused.value.status, refused.value.body) == (410, gone)
