"""The watch-list phase: what a client-go informer's start costs since kube 1.35 (a watch with
``sendInitialEvents=true``: every object as ADDED, then the initial-events-end BOOKMARK)
against the LIST it replaces, on the same objects of the same server in the same run.

The store is filled by its bulk path (the scale phase's objects); a server is started on it.
Each round times, in alternating order, one unpaged LIST and one watch-list of the namespace,
each on a fresh TLS connection (a watch cannot hand its connection back), from the request
sent: to the first object (the LIST's first item, the watch's first ADDED line) and to the
end (the LIST's last byte, the watch's BOOKMARK). Medians over the rounds are quoted.
"""

from __future__ import annotations

import re
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from bench import scale
from bench.scale import COLLECTION, Engine, Line
from bench.serve import REAL_APP, Launch
from bench.wire import Target

_RECV = 256 * 1024
WATCH_LIST = (
    "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
    "&allowWatchBookmarks=true&timeoutSeconds=60"
)
_END = b"k8s.io/initial-events-end"
_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)")


class Timing(NamedTuple):
    """One read: seconds to the first object and to the end, and the objects received."""

    first: float
    total: float
    objects: int


def run(
    root: Path,
    launch: Launch,
    engine: Engine,
    objects: int,
    rounds: int,
    say: Callable[[str], None],
) -> list[Line]:
    """Fill ``objects``, then ``rounds`` of a LIST and a watch-list, alternating which is first."""
    store = engine.open()
    try:
        scale.load(store, 0, objects)
    finally:
        store.close()
    lists: list[Timing] = []
    watches: list[Timing] = []
    with launch.serve(root / "server", REAL_APP, env=engine.env) as served:
        target = served.target
        kinds: list[tuple[list[Timing], str, Callable[[bytes, bytearray], bool]]] = [
            (lists, COLLECTION, _listed),
            (watches, COLLECTION + WATCH_LIST, _watched),
        ]
        for _, path, done in kinds:  # warm both paths, unmeasured
            read(target, path, done)
        for number in range(rounds):
            say(f"watch-list: round {number + 1} of {rounds}")
            for into, path, done in kinds if number % 2 == 0 else kinds[::-1]:
                into.append(read(target, path, done))
    for name, timings in (("LIST", lists), ("watch-list", watches)):
        if any(t.objects != objects for t in timings):
            raise RuntimeError(f"a {name} returned {[t.objects for t in timings]} objects")
    return _lines(lists, watches, objects)


def _lines(lists: list[Timing], watches: list[Timing], objects: int) -> list[Line]:
    def medians(timings: list[Timing]) -> tuple[float, float]:
        return statistics.median(t.first for t in timings), statistics.median(
            t.total for t in timings
        )

    list_first, list_total = medians(lists)
    watch_first, watch_total = medians(watches)
    rounds = f"median of {len(lists)} rounds"
    return [
        Line("LIST, to the first item", list_first * 1000, "ms", note=rounds),
        Line(f"LIST, all {objects:,}", list_total * 1000, "ms"),
        Line("watch-list, to the first ADDED", watch_first * 1000, "ms"),
        Line(f"watch-list, to the end BOOKMARK ({objects:,} ADDED)", watch_total * 1000, "ms"),
        Line("first object, watch-list / LIST", watch_first / list_first, "x"),
        Line("whole state, watch-list / LIST", watch_total / list_total, "x"),
    ]


def read(target: Target, path: str, done: Callable[[bytes, bytearray], bool]) -> Timing:
    """GET ``path`` on a fresh connection until ``done(head, body so far)``; the timings from
    the request sent, the first object marked by a ``"uid":`` in the body."""
    with target.context().wrap_socket(
        socket.create_connection((target.host, target.port)), server_hostname=target.host
    ) as tls:
        began = time.perf_counter()
        tls.sendall(target.get(path))
        received = bytearray()
        head, first = b"", 0.0
        while True:
            data = tls.recv(_RECV)
            if not data:
                raise RuntimeError(f"the connection closed: {bytes(received[:300])!r}")
            received += data
            if not head and b"\r\n\r\n" in received:
                head, _, rest = bytes(received).partition(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head.decode(errors="replace"))
                received = bytearray(rest)
            if head and not first and b'"uid":' in received:
                first = time.perf_counter() - began
            if head and done(head, received):
                total = time.perf_counter() - began
                return Timing(first, total, bytes(received).count(b'"uid":'))


def _listed(head: bytes, body: bytearray) -> bool:
    """The LIST's body is complete: all its Content-Length, or its chunked terminator."""
    found = _LENGTH.search(head)
    if found is not None:
        return len(body) >= int(found.group(1))
    return body.endswith(b"\r\n0\r\n\r\n")


def _watched(head: bytes, body: bytearray) -> bool:
    """The watch-list's initial events are complete: its BOOKMARK line (the last of its
    chunk) has arrived."""
    return body.endswith(b"\n\r\n") and _END in body[-200:]


def title(objects: int) -> str:
    """The phase's table title."""
    return (
        f"Watch-list, SQLite: {objects:,} customtasks in one namespace, a watch with "
        "sendInitialEvents=true against a LIST, one client over HTTPS"
    )
