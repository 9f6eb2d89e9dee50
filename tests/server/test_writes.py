"""Writes through the real server: concurrency across gunicorn workers, chunked YAML bodies."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import orjson

from tests.support.servers import Server

GV = "/apis/search.task.example.example.com/v1"
SPEC = {"priority": 1, "deadline": "2026-01-01T00:00:00Z"}


def test_two_workers_eight_clients_500_creates_lose_nothing(server: Server) -> None:
    path = f"{server.url}{GV}/namespaces/load/customtasks"

    def client(index: int) -> list[int]:
        session = server.session()
        versions = []
        for i in range(index, 500, 8):
            body = {"metadata": {"name": f"obj-{i:03d}"}, "spec": SPEC}
            r = session.post(path, json=body, timeout=30)
            assert r.status_code == 201, r.text
            versions.append(int(r.json()["metadata"]["resourceVersion"]))
        return versions

    with ThreadPoolExecutor(8) as pool:
        per_client = list(pool.map(client, range(8)))
    for versions in per_client:
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
    created = {v for versions in per_client for v in versions}
    assert len(created) == 500
    listed = server.session().get(path, timeout=30).json()["items"]
    assert len(listed) == 500
    assert {int(i["metadata"]["resourceVersion"]) for i in listed} == created
    assert {i["metadata"]["name"] for i in listed} == {f"obj-{i:03d}" for i in range(500)}
    workers = {
        record["pid"]
        for record in map(orjson.loads, server.log().split("\n")[:-1])  # whole lines only
        if record.get("message", "").startswith("Booting worker")
    }
    assert len(workers) == 2


def test_chunked_yaml_body_without_content_type(server: Server) -> None:
    document = (
        b"apiVersion: search.task.example.example.com/v1\n"
        b"kind: ClusterTask\n"
        b"spec:\n  priority: 4\n  deadline: 2025-08-19T16:52:15Z\n  details: chunked\n"
    )

    def chunks() -> Iterator[bytes]:
        yield document[:40]
        yield document[40:]

    r = server.session().post(f"{server.url}{GV}/clustertasks/chunky", data=chunks(), timeout=30)
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Type" not in r.request.headers
    assert r.status_code == 201, r.text
    assert r.json()["spec"] == {
        "priority": 4,
        "deadline": "2025-08-19T16:52:15Z",
        "details": "chunked",
        "taskState": "Pending",
    }
