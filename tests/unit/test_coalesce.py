"""Coalesced reads: callers that arrive while a fetch is in flight share the next one, each
is answered by a fetch that began after it asked, errors reach every caller of their fetch,
and the lead passes on so that no caller waits for ever."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

from store.coalesce import Coalescer


class Source:
    """A fetch that records its calls; while ``gate`` is clear, a fetch waits for it."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.started = threading.Semaphore(0)
        self.gate = threading.Event()
        self.gate.set()
        self.version = 0  # what a fetch reads: the version when it began
        self.fail: BaseException | None = None

    def fetch(self, keys: Sequence[str]) -> Mapping[str, tuple[str, int]]:
        self.calls.append(list(keys))
        seen = self.version
        self.started.release()
        assert self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        return {key: (key, seen) for key in keys if key != "missing"}


def in_thread(
    coalescer: Coalescer[str, tuple[str, int]], key: str, out: dict[str, object], label: str = ""
) -> threading.Thread:
    """``coalescer.get(key)`` in a thread of its own; its answer or error goes to
    ``out[label or key]``."""

    def run() -> None:
        try:
            out[label or key] = coalescer.get(key)
        except Exception as ex:  # the test reads it
            out[label or key] = ex

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def queued(coalescer: Coalescer[str, tuple[str, int]], count: int) -> None:
    """Wait until ``count`` callers wait behind the fetch in flight."""
    deadline = time.monotonic() + 10
    while len(coalescer._queued) < count:
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_a_lone_get_is_one_fetch_of_its_key() -> None:
    source = Source()
    coalescer = Coalescer(source.fetch, most=8)
    assert coalescer.get("a") == ("a", 0)
    assert coalescer.get("missing") is None
    assert source.calls == [["a"], ["missing"]]


def test_gets_arriving_during_a_fetch_share_the_next_and_see_what_it_read() -> None:
    """The fetch in flight began before they asked, so it cannot answer them; the next one
    does, once, for all of them."""
    source = Source()
    coalescer = Coalescer(source.fetch, most=8)
    out: dict[str, object] = {}
    source.gate.clear()
    first = in_thread(coalescer, "a", out, "first a")
    assert source.started.acquire(timeout=10)
    source.version = 1  # a write committed after the first fetch began
    later = [in_thread(coalescer, key, out) for key in ("b", "c", "a")]
    queued(coalescer, 3)
    source.gate.set()
    for thread in (first, *later):
        thread.join(10)
    assert [sorted(call) for call in source.calls] == [["a"], ["a", "b", "c"]]
    assert out == {"first a": ("a", 0), "a": ("a", 1), "b": ("b", 1), "c": ("c", 1)}


def test_no_fetch_takes_more_than_most_keys() -> None:
    source = Source()
    coalescer = Coalescer(source.fetch, most=3)
    out: dict[str, object] = {}
    source.gate.clear()
    first = in_thread(coalescer, "k0", out)
    assert source.started.acquire(timeout=10)
    later = [in_thread(coalescer, f"k{n}", out) for n in range(1, 8)]
    queued(coalescer, 7)
    source.gate.set()
    for thread in (first, *later):
        thread.join(10)
    assert [len(call) for call in source.calls] == [1, 3, 3, 1]
    assert out == {f"k{n}": (f"k{n}", 0) for n in range(8)}


def test_an_error_reaches_every_caller_of_its_fetch_and_the_next_fetch_runs() -> None:
    source = Source()
    coalescer = Coalescer(source.fetch, most=8)
    out: dict[str, object] = {}
    source.gate.clear()
    source.fail = RuntimeError("connection lost")
    first = in_thread(coalescer, "a", out)
    assert source.started.acquire(timeout=10)
    second = in_thread(coalescer, "b", out)
    queued(coalescer, 1)
    source.gate.set()
    first.join(10)
    second.join(10)
    assert [str(out[key]) for key in "ab"] == ["connection lost"] * 2
    source.fail = None
    assert coalescer.get("c") == ("c", 0)


def test_many_threads_each_get_their_own_key() -> None:
    """Under contention every caller is answered with its own key, and the lead is given
    up at the end."""
    threads = 16
    source = Source()
    coalescer = Coalescer(source.fetch, most=8)
    wrong: list[tuple[str, object]] = []

    def run(n: int) -> None:
        for round_ in range(200):
            key = f"t{n}-{round_}"
            got = coalescer.get(key)
            if got != (key, 0):
                wrong.append((key, got))

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert wrong == []
    assert sum(map(len, source.calls)) == threads * 200
    assert not coalescer._leading and coalescer._queued == []
