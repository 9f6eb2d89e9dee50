"""The serving model under real gunicorn: connections spread evenly over the workers whatever
order they come in, a dead worker's slot stops no one accepting, a kept-alive connection's
requests are answered whether they come within the linger, after it, or pipelined, and the
workers' threads share the malloc arenas the master allowed before forking them."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import cpu
from tests.support.processes import Process, children
from tests.support.servers import Server, run_server

HEALTH = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("serving")) as running:
        _serving_on_both(running)
        yield running


def _serving_on_both(server: Server) -> None:
    """Once both workers accept (the server is ready when one is): connections until each
    worker holds one, then none."""
    opened: list[ssl.SSLSocket] = []
    try:
        _until_both_hold_one(server, opened)
    finally:
        for conn in opened:
            conn.close()
    _until(lambda: sum(_held(server)) == 0, "the connections closed")


def _until_both_hold_one(server: Server, opened: list[ssl.SSLSocket]) -> None:
    """Answered connections, added to ``opened``, until each worker holds one (a worker that
    has just booted accepts once it runs its loop)."""
    deadline = time.monotonic() + 30
    while len([n for n in _by_worker(server).values() if n]) < 2:
        assert time.monotonic() < deadline, "a worker never accepted"
        opened.append(_answered(server))
        time.sleep(0.05)


def _answered(server: Server) -> ssl.SSLSocket:
    """A new connection whose first request was answered."""
    conn = _connect(server)
    conn.sendall(HEALTH)
    assert b" 200 " in _answer(conn)
    return conn


def _connect(server: Server) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=server.pki.ca_file)
    context.load_cert_chain(*server.pki.client("admin", ("system:masters",)))
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return context.wrap_socket(raw, server_hostname="localhost")


def _answer(conn: ssl.SSLSocket) -> bytes:
    """One response to a health check (its body is a few bytes, the head says how many)."""
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"ok"):
        chunk = conn.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    return data


def _by_worker(server: Server) -> dict[int, int]:
    """Client connections each worker holds, by pid."""
    sample = cpu.sample(server.process.pid, server.port)
    assert sample is not None
    return sample.connections


def _held(server: Server) -> list[int]:
    """Client connections each worker holds, fewest first."""
    return sorted(_by_worker(server).values())


def _until(condition: object, what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_connections_one_after_another_split_evenly_over_the_workers(server: Server) -> None:
    """Each connection lands on the worker holding fewest: with 2 workers, 8 connections
    opened in turn (each answered before the next opens) are 4 and 4, where gunicorn alone
    may give them all to the first worker whose poller wakes."""
    opened = []
    try:
        for _ in range(8):
            opened.append(_answered(server))
        _until(lambda: sum(_held(server)) == 8, "every connection held")
        assert _held(server) == [4, 4]
    finally:
        for conn in opened:
            conn.close()


def test_watches_opened_in_turn_are_each_accepted_at_once(server: Server) -> None:
    """A worker that leaves new connections to a peer looks again within milliseconds: a
    connection held by a watch wakes no worker's loop, so a worker that waited for its next
    event would leave the next watch unaccepted for up to a second at each turn (1,000
    watches took minutes to open)."""
    watch = (
        b"GET /apis/search.task.example.example.com/v1/namespaces/default/customtasks"
        b"?watch=true HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    opened: list[ssl.SSLSocket] = []
    slowest = 0.0
    try:
        for _ in range(24):
            began = time.monotonic()
            conn = _connect(server)
            opened.append(conn)
            conn.sendall(watch)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                assert chunk, "the server closed the watch"
                head += chunk
            assert head.startswith(b"HTTP/1.1 200 ")
            slowest = max(slowest, time.monotonic() - began)
        _until(lambda: sum(_held(server)) == 24, "every watch held")
        low, high = _held(server)
        assert high - low <= 1 + low // 8  # even, to the eighth a worker may take beyond
    finally:
        for conn in opened:
            conn.close()
    assert slowest < 0.5


def test_a_killed_workers_slot_stops_no_one_accepting(tmp_path: Path) -> None:
    with run_server(tmp_path) as server:
        master = Process.of(server.process.pid)
        assert master is not None
        _until(lambda: len(children(master)) == 2, "both workers up")
        victim = min(children(master), key=lambda p: p.pid)
        victim.send(signal.SIGKILL)
        _until(lambda: victim not in children(master), "the worker reaped")
        opened = []
        try:
            for _ in range(6):  # whoever serves them, each is answered at once
                began = time.monotonic()
                opened.append(_answered(server))
                assert time.monotonic() - began < 1.0
            _until(lambda: len(children(master)) == 2, "a worker in its place")
            survivor = max(_by_worker(server).items(), key=lambda item: item[1])[0]
            _until_both_hold_one(server, opened)
            before = _by_worker(server)
            for _ in range(3):  # the newcomer holds fewer: it takes them all
                opened.append(_answered(server))
            after = _by_worker(server)
            assert after[survivor] == before[survivor]
            assert sum(after.values()) == sum(before.values()) + 3
        finally:
            for conn in opened:
                conn.close()


def test_a_kept_alive_connection_is_answered_within_and_after_the_linger(server: Server) -> None:
    conn = _connect(server)
    try:
        for pause in (0.0, 0.001, 0.3, 0.0):  # 0.3 s: past the linger, back to the poller
            time.sleep(pause)
            conn.sendall(HEALTH)
            assert b" 200 " in _answer(conn)
        conn.sendall(HEALTH + HEALTH)  # pipelined: the second is read with the first
        first = _answer(conn)
        second = first.split(b"ok", 1)[1] or _answer(conn)
        assert first.count(b" 200 ") + second.count(b" 200 ") >= 2
    finally:
        conn.close()


def test_shutdown_is_prompt_with_a_connection_lingering(tmp_path: Path) -> None:
    """SIGTERM while a kept-alive connection waits for its next request: the worker ends
    within the linger and gunicorn's short grace for kept-alive connections, not its 20 s
    graceful timeout."""
    with run_server(tmp_path) as server:
        conn = _connect(server)
        try:
            conn.sendall(HEALTH)
            assert b" 200 " in _answer(conn)
            began = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=15)
            assert time.monotonic() - began < 5
            assert server.process.returncode == 0
        finally:
            conn.close()


def test_the_http_client_sees_keep_alive_answers(server: Server) -> None:
    context = ssl.create_default_context(cafile=server.pki.ca_file)
    context.load_cert_chain(*server.pki.client("admin", ("system:masters",)))
    client = http.client.HTTPSConnection("127.0.0.1", server.port, context=context)
    client.connect()
    try:
        for _ in range(20):
            client.request("GET", "/livez")
            answer = client.getresponse()
            assert (answer.status, answer.read()) == (200, b"ok")
            assert answer.getheader("Connection", "keep-alive").lower() == "keep-alive"
    finally:
        client.close()


def test_a_write_through_one_worker_is_read_at_once_through_the_other(server: Server) -> None:
    """Each worker answers gets from the rows it read last while nothing was committed since:
    a write committed by the other worker must be seen by the very next get."""
    context = ssl.create_default_context(cafile=server.pki.ca_file)
    context.load_cert_chain(*server.pki.client("admin", ("system:masters",)))
    first, second = (
        http.client.HTTPSConnection("127.0.0.1", server.port, context=context) for _ in range(2)
    )
    path = "/apis/search.task.example.example.com/v1/namespaces/default/customtasks"
    spec = {"priority": 1, "deadline": "2030-01-01T00:00:00Z", "details": "x"}
    body = {"metadata": {"name": "shared"}, "spec": spec}
    try:
        first.connect()
        first.request("GET", "/livez")
        first.getresponse().read()
        second.connect()  # opened after the first was taken: it lands on the other worker
        second.request("GET", "/livez")
        second.getresponse().read()
        _until(lambda: _held(server) == [1, 1], "one connection on each worker")
        first.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        created = first.getresponse()
        assert created.status == 201, created.read()
        version = json.loads(created.read())["metadata"]["resourceVersion"]
        for n in range(40):
            writer, reader = (first, second) if n % 2 else (second, first)
            reader.request("GET", f"{path}/shared")
            read = reader.getresponse()
            assert json.loads(read.read())["metadata"]["resourceVersion"] == version
            patch = json.dumps({"metadata": {"labels": {"n": str(n)}}})
            writer.request(
                "PATCH", f"{path}/shared", patch, {"Content-Type": "application/merge-patch+json"}
            )
            patched = writer.getresponse()
            assert patched.status == 200
            version = json.loads(patched.read())["metadata"]["resourceVersion"]
    finally:
        first.close()
        second.close()


_HEAP = 64 << 20  # glibc's HEAP_MAX_SIZE on 64-bit: each arena but the main one reserves this


def _arenas(pid: int) -> int:
    """glibc's arenas in process ``pid``: the main one, and one per heap, a reservation of
    :data:`_HEAP` aligned on its size (the part in use, then the rest without access)."""
    spans = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        span, perms, *rest = line.split()
        if len(rest) == 3:  # offset, device, inode and no path: anonymous
            start, end = (int(part, 16) for part in span.split("-"))
            spans.append((start, end, perms))
    heaps = 0
    for i, (start, end, perms) in enumerate(spans):
        if start % _HEAP or not perms.startswith("rw"):
            continue
        reserved = end
        if end - start < _HEAP and i + 1 < len(spans) and spans[i + 1][0] == end:
            reserved = spans[i + 1][1]  # the rest, without access
        heaps += reserved - start == _HEAP
    return 1 + heaps


def _busy_threads_on_both(server: Server) -> list[int]:
    """Arenas in each worker after 12 connections asked at once, 20 times each: each
    worker's pool ran several threads together."""

    def asking() -> None:
        conn = _connect(server)
        try:
            for _ in range(20):
                conn.sendall(HEALTH)
                assert b" 200 " in _answer(conn)
        finally:
            conn.close()

    clients = [threading.Thread(target=asking) for _ in range(12)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(60)
    master = Process.of(server.process.pid)
    assert master is not None
    workers = children(master)
    assert len(workers) == 2
    return [_arenas(worker.pid) for worker in workers]


def test_the_workers_threads_share_two_malloc_arenas(server: Server) -> None:
    assert max(_busy_threads_on_both(server)) <= 2


def test_without_the_limit_the_workers_threads_take_more_arenas(tmp_path: Path) -> None:
    """The control (``APISERVER_MALLOC_ARENAS=0``: glibc's own eight per core): the count
    above is the limit's doing."""
    with run_server(tmp_path, env={"APISERVER_MALLOC_ARENAS": "0"}) as server:
        _serving_on_both(server)
        assert max(_busy_threads_on_both(server)) > 2
