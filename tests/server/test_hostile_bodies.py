"""The worst bodies a client can send cost a worker a bounded amount of memory: serving any
one of them raises a gunicorn worker's peak RSS (``VmHWM``, reset before each) by less than
50 MB above what it held before, whether the body is refused or stored, and so does serving
them all back in one list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proxy.decoding import MAX_DEPTH, MAX_VALUES, MAX_YAML_NODES
from tests.support.processes import Process, children, memory_kb, reset_peak
from tests.support.servers import Server, run_server

GV = "/apis/search.task.example.example.com/v1"
MIB = 1024 * 1024
BUDGET_KB = 50 * 1024


@pytest.fixture(scope="module")
def lone_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with one worker, so that every request lands on the process measured."""
    with run_server(tmp_path_factory.mktemp("bodies"), workers=1) as running:
        yield running


def worker_pid(server: Server) -> int:
    master = Process.of(server.process.pid)
    assert master is not None, "the gunicorn master is not running"
    (worker,) = children(master)
    return worker.pid


def with_fields(name: str, fields_v1: str) -> bytes:
    """A CustomTask carrying ``fields_v1`` (JSON text) where any JSON object is stored:
    a managedFields entry's fieldsV1."""
    entry = f'{{"manager":"m","operation":"Update","fieldsType":"FieldsV1","fieldsV1":{fields_v1}}}'
    spec = '{"priority":1,"deadline":"2030-01-01T00:00:00Z"}'
    return f'{{"metadata":{{"name":"{name}","managedFields":[{entry}]}},"spec":{spec}}}'.encode()


def yaml_bomb() -> bytes:
    """The billion laughs nested under status (the 585-byte body that stored 62 MB)."""
    lines = ["metadata: {name: bomb}", "spec: {priority: 1, deadline: '2030-01-01T00:00:00Z'}"]
    lines += ["status:", '  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"  l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]")
    return ("\n".join(lines) + "\n").encode()


def worst_bodies() -> list[tuple[str, str, bytes]]:
    """(what, content type, body): refused and accepted, each as large as allowed."""
    many = MAX_VALUES - 1000
    yaml_many = MAX_YAML_NODES - 100
    return [
        ("nested yaml alias bomb", "application/yaml", yaml_bomb()),
        ("3 MiB of empty objects", "application/json", b"[" + b"{}," * (MIB - 2) + b"{}]"),
        ("3 MiB of short strings", "application/json", b"[" + b'"ab",' * (629_000) + b'"ab"]'),
        ("3 MiB of yaml", "application/yaml", b"- 0\n" * (3 * MIB // 4)),
        ("100,000 levels of yaml", "application/yaml", b"a: " + b"[" * 100_000),
        (
            "the most empty objects accepted",
            "application/json",
            with_fields("objects", "{" + ",".join(f'"{i}":{{}}' for i in range(many // 2)) + "}"),
        ),
        (
            "the most strings accepted",
            "application/json",
            with_fields("strings", '{"s":[' + ",".join(f'"{i:x}"' for i in range(many)) + "]}"),
        ),
        (
            "the deepest accepted, repeated",
            "application/json",
            with_fields(
                "deep",
                "{"
                + ",".join(
                    f'"{i}":' + "[" * (MAX_DEPTH - 5) + "]" * (MAX_DEPTH - 5)
                    for i in range(many // MAX_DEPTH)
                )
                + "}",
            ),
        ),
        (
            "the most yaml accepted",
            "application/yaml",
            b"metadata:\n  name: yaml\n  managedFields:\n  - manager: m\n    operation: Update\n"
            b"    fieldsV1:\n      s:\n"
            + b"".join(b"      - %d\n" % i for i in range(yaml_many))
            + b"spec: {priority: 1, deadline: '2030-01-01T00:00:00Z'}\n",
        ),
    ]


def test_no_body_raises_a_workers_peak_memory_by_50_mb(lone_worker: Server) -> None:
    session = lone_worker.session()
    path = f"{lone_worker.url}{GV}/namespaces/bodies/customtasks"
    warm = {
        "metadata": {"name": "warm"},
        "spec": {"priority": 1, "deadline": "2030-01-01T00:00:00Z"},
    }
    assert session.post(path, json=warm, timeout=30).status_code == 201
    assert session.get(path, timeout=30).status_code == 200
    pid = worker_pid(lone_worker)
    answers, peaks = {}, {}
    for what, content_type, body in worst_bodies():
        assert len(body) <= 3 * MIB, what
        reset_peak(pid)
        before = memory_kb(pid, "VmRSS")
        r = session.post(path, data=body, headers={"Content-Type": content_type}, timeout=120)
        peaks[what] = memory_kb(pid, "VmHWM") - before
        answers[what] = r.status_code
        assert r.status_code in (201, 400), (what, r.status_code, r.text[:300])
        assert r.json()["kind"] in ("Status", "CustomTask"), what
    reset_peak(pid)
    before = memory_kb(pid, "VmRSS")
    assert session.get(path, timeout=60).status_code == 200  # every stored body, served
    peaks["the list of them all"] = memory_kb(pid, "VmHWM") - before
    assert worker_pid(lone_worker) == pid  # no worker died on the way
    assert max(peaks.values()) < BUDGET_KB, peaks

    refused = {what for what, code in answers.items() if code == 400}
    assert refused == {
        "nested yaml alias bomb",
        "3 MiB of empty objects",
        "3 MiB of short strings",
        "3 MiB of yaml",
        "100,000 levels of yaml",
    }, answers
