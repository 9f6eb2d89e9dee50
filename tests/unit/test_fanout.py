"""The per-process watch fan-out: shared work, slow and departed clients, limits, shutdown.

The fan-out runs for real on a SQLite store; watches are subscribed the way the proxy does
(subscribe, read the starting state, carry) and written to real sockets (a socket pair,
whose far end is the client) or to the queue outlet the in-process server uses.
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from pathlib import Path

import orjson
import pytest

from handlers.api.contract import ApiRequest, Deps
from handlers.api.errors import ApiError
from handlers.api.watch import WatchEvent
from handlers.owned import watch as owned_watch
from handlers.registry import find
from proxy import fanout as fanout_module
from proxy.fanout import FanOut, Watch
from proxy.negotiation import Output
from proxy.outlets import Outlet, QueueOutlet, SocketOutlet
from proxy.render import watch_event
from store.sqlite import SQLiteStore
from tests.store.contract import obj

SERVED = find("customtasks")
assert SERVED is not None
KIND = SERVED.kind
RESOURCE = KIND.plural


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(str(tmp_path / "s.db"))


@pytest.fixture
def stopping() -> threading.Event:
    return threading.Event()


@pytest.fixture
def fan(store: SQLiteStore, stopping: threading.Event) -> FanOut:
    return FanOut(store, stopping, max_watches=50, interval=0.005)


class Counted:
    """The object-form renderer, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self._render = functools.partial(watch_event, KIND, output=Output("object"), include="")

    def __call__(self, event: WatchEvent, first: bool) -> bytes:
        self.calls += 1
        return self._render(event, first)


def start(fan: FanOut, store: SQLiteStore, outlet: Outlet, render: Counted, **query: str) -> Watch:
    """Subscribe a watch of namespace ``ns`` from now and hand it to the fan-out."""
    request = ApiRequest(KIND, "watch", "ns", None, {"resourceVersion": "0", **query})
    watch = fan.subscribe(owned_watch.handle(request, Deps(store)))
    assert list(fan.begin(watch)) == []  # nothing stored yet
    fan.carry(watch, outlet, render, "object", first=False)
    return watch


class Reader:
    """Reads the event lines of a queue outlet as they come, like a client that keeps up."""

    def __init__(self, outlet: QueueOutlet) -> None:
        self.events: list[dict[str, object]] = []
        self.ended = threading.Event()
        threading.Thread(target=self._read, args=(outlet,), daemon=True).start()

    def _read(self, outlet: QueueOutlet) -> None:
        for data in outlet.relay():
            self.events.extend(orjson.loads(line) for line in data.splitlines())
        self.ended.set()

    def wait(self, count: int, timeout: float = 5.0) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.events


def names(events: list[dict[str, object]]) -> list[str]:
    return [e["object"]["metadata"]["name"] for e in events]  # type: ignore[index]


def test_watches_with_equal_selectors_share_one_computation_and_encoding(
    fan: FanOut, store: SQLiteStore
) -> None:
    render = Counted()
    readers = []
    for _ in range(20):
        outlet = QueueOutlet()
        start(fan, store, outlet, render)
        readers.append(Reader(outlet))
    time.sleep(0.05)  # adopted
    for i in range(5):
        store.create(RESOURCE, "ns", f"t{i}", obj(f"t{i}"), {})
    for reader in readers:
        assert names(reader.wait(5)) == [f"t{i}" for i in range(5)]
    assert render.calls == 5  # once per change, not once per change and watch


def test_a_client_that_stops_reading_is_cut_and_never_delays_the_others(
    fan: FanOut, store: SQLiteStore
) -> None:
    server_end, client_end = socket.socketpair()
    stalled = SocketOutlet(server_end)  # its client never reads
    healthy = QueueOutlet()
    start(fan, store, stalled, Counted())
    start(fan, store, healthy, Counted())
    reader = Reader(healthy)
    time.sleep(0.05)
    big = "x" * 100_000
    count = 4 * fanout_module.MAX_UNSENT // len(big)
    for i in range(count):
        store.create(RESOURCE, "ns", f"t{i}", {**obj(f"t{i}"), "spec": {"big": big}}, {})
    assert len(reader.wait(count, timeout=20)) == count
    assert not reader.ended.is_set()
    relayed = threading.Thread(target=lambda: list(stalled.relay()), daemon=True)
    relayed.start()
    relayed.join(fanout_module.STALL_SECONDS + 8)
    assert not relayed.is_alive()  # the request thread was released: the watch was cut
    client_end.settimeout(5)
    received = 0
    while chunk := client_end.recv(1 << 20):
        received += len(chunk)
    assert 0 < received < count * len(big)  # the stream was cut: end of file, part sent
    client_end.close()


def test_a_client_that_hangs_up_is_noticed_without_any_write(
    fan: FanOut, store: SQLiteStore
) -> None:
    server_end, client_end = socket.socketpair()
    outlet = SocketOutlet(server_end)
    start(fan, store, outlet, Counted())
    time.sleep(0.05)
    client_end.close()
    relayed = threading.Thread(target=lambda: list(outlet.relay()), daemon=True)
    relayed.start()
    relayed.join(5)
    assert not relayed.is_alive()
    store.create(RESOURCE, "ns", "after", obj("after"), {})  # nothing left to write it to


def test_chunks_on_the_socket_are_http_chunked_event_lines(fan: FanOut, store: SQLiteStore) -> None:
    server_end, client_end = socket.socketpair()
    start(fan, store, SocketOutlet(server_end), Counted())
    time.sleep(0.05)
    store.create(RESOURCE, "ns", "a", obj("a"), {})
    client_end.settimeout(5)
    data = b""
    while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2:
        data += client_end.recv(65536)
    size, _, rest = data.partition(b"\r\n")
    body = rest[: int(size, 16)]
    assert rest[int(size, 16) :] == b"\r\n"
    event = orjson.loads(body)
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "a")
    client_end.close()


def test_more_watches_than_the_limit_get_429(store: SQLiteStore) -> None:
    fan = FanOut(store, threading.Event(), max_watches=2)
    render = Counted()
    first = start(fan, store, QueueOutlet(), render)
    start(fan, store, QueueOutlet(), render)
    with pytest.raises(ApiError) as refused:
        start(fan, store, QueueOutlet(), render)
    assert (refused.value.code, refused.value.reason) == (429, "TooManyRequests")
    assert refused.value.headers == {"Retry-After": "1"}
    fan.cancel(first)  # a watch that ends makes room
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            start(fan, store, QueueOutlet(), render)
            break
        except ApiError:
            time.sleep(0.01)
    else:
        pytest.fail("the limit stayed reached after a watch ended")


def test_shutdown_and_deadlines_end_watches_cleanly(
    fan: FanOut, store: SQLiteStore, stopping: threading.Event
) -> None:
    short, long = QueueOutlet(), QueueOutlet()
    start(fan, store, short, Counted(), timeoutSeconds="1")
    start(fan, store, long, Counted())
    short_reader, long_reader = Reader(short), Reader(long)
    assert short_reader.ended.wait(5)
    assert not long_reader.ended.is_set()
    stopping.set()
    assert long_reader.ended.wait(2)
