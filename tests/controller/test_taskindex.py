"""The search's Task indexer against the fake cluster: it resumes its watch, lists again when
the cluster answers 410 (so a deletion it never saw still leaves the index), and one indexer
per store works at a time, another taking over when it stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from k8s import taskindex
from k8s.client import Cluster
from k8s.taskindex import TaskIndexer
from store.search import parse
from store.sqlite import SQLiteStore
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import TASKS

ALL_TASKS = "/apis/example.example.com/v1/tasks"


def eventually(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(0.05)


def put(fake: FakeCluster, name: str, details: str) -> dict[str, Any]:
    spec = {"priority": 3, "deadline": "2030-01-01T00:00:00Z", "details": details}
    return fake.objects.put(TASKS, {"metadata": {"name": name, "namespace": "ns"}, "spec": spec})


def indexed(store: SQLiteStore) -> list[str]:
    return sorted(hit.name for hit in store.search(parse("+kind:task"), 100))


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    with FakeCluster() as cluster:
        yield cluster


class Running:
    """An indexer in a thread, until ``stop``."""

    def __init__(self, store: SQLiteStore, cluster: Cluster) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=TaskIndexer(store, cluster, self.stop).run, daemon=True
        )
        self.thread.start()

    def end(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def client(fake: FakeCluster, tmp_path: Path) -> Cluster:
    found = Cluster.from_environment(str(fake.kubeconfig(tmp_path)))
    assert found is not None
    return found


def test_a_410_lists_again_and_what_was_missed_leaves_the_index(
    fake: FakeCluster, tmp_path: Path
) -> None:
    put(fake, "a", "first")
    put(fake, "b", "second")
    store = SQLiteStore(str(tmp_path / "s.db"))
    indexer = Running(store, client(fake, tmp_path))
    try:
        eventually(lambda: indexed(store) == ["a", "b"], "the first list indexed")
        fake.slow["tasks"] = 1.0  # the next watch is answered after what follows
        fake.objects.cut_watches()
        fake.objects.delete(TASKS, "ns", "a")
        put(fake, "c", "third")
        fake.objects.compact()  # the resumed watch's resourceVersion is gone: 410
        eventually(lambda: indexed(store) == ["b", "c"], "listed again after the 410")
        fake.slow.clear()
        lists = fake.count("GET", ALL_TASKS, watch=False)
        assert lists == 2
    finally:
        indexer.end()


def test_one_indexer_per_store_and_another_takes_over(fake: FakeCluster, tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    first_store, second_store = SQLiteStore(path), SQLiteStore(path)
    first = Running(first_store, client(fake, tmp_path))
    eventually(lambda: fake.count("GET", ALL_TASKS, watch=True) == 1, "watching")
    second = Running(second_store, client(fake, tmp_path))
    try:
        put(fake, "a", "first")
        eventually(lambda: indexed(second_store) == ["a"], "indexed by the first")
        time.sleep(taskindex.TAKEOVER_SECONDS + 0.5)  # the second tried and stood by
        assert fake.count("GET", ALL_TASKS, watch=True) == 1
        first.end()
        put(fake, "b", "second")
        eventually(lambda: indexed(second_store) == ["a", "b"], "indexed by the second")
        # b comes from the second's list; its watch opens just after
        eventually(lambda: fake.count("GET", ALL_TASKS, watch=True) == 2, "the second watching")
    finally:
        first.end()
        second.end()
