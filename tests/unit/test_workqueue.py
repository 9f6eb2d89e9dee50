"""The controller's work queue keeps client-go's and controller-runtime's promises: a key
waits once however often it is added, no two workers hold one key, a live change goes before
the initial list's backlog, and retries back off as ``DefaultControllerRateLimiter``."""

from __future__ import annotations

import threading
import time

from prometheus_client import REGISTRY

from k8s.workqueue import BACKLOG, LIVE, WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drain(queue: WorkQueue[str]) -> list[str]:
    """Every key ready now, each done at once."""
    taken = []
    while (key := queue.get(timeout=0)) is not None:
        taken.append(key)
        queue.done(key)
    return taken


def test_a_key_added_again_while_it_waits_is_queued_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("ns/a", "ns/b", "ns/a", "ns/a"):
        queue.add(key)
    assert len(queue) == 2
    assert drain(queue) == ["ns/a", "ns/b"]


def test_a_key_held_by_a_worker_is_handed_out_again_only_when_it_is_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("ns/a")
    assert queue.get(timeout=0) == "ns/a"
    queue.add("ns/a")  # changed while it is processed
    assert queue.get(timeout=0) is None  # not to a second worker
    queue.done("ns/a")
    assert queue.get(timeout=0) == "ns/a"
    queue.done("ns/a")
    assert queue.get(timeout=0) is None


def test_live_changes_go_before_the_backlog_and_a_waiting_key_moves_up() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for n in range(1000):
        queue.add(f"ns/old-{n}", BACKLOG)
    queue.add("ns/fresh", LIVE)
    queue.add("ns/old-500", LIVE)  # changed while it waited in the backlog
    taken = drain(queue)
    assert taken[:2] == ["ns/fresh", "ns/old-500"]
    assert len(taken) == 1001 and taken.count("ns/old-500") == 1
    assert taken[2:] == [f"ns/old-{n}" for n in range(1000) if n != 500]


def test_a_live_key_added_again_from_a_resync_keeps_its_priority() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("ns/backlog", BACKLOG)
    queue.add("ns/live", LIVE)
    queue.add("ns/live", BACKLOG)
    assert drain(queue) == ["ns/live", "ns/backlog"]


def test_retries_back_off_exponentially_from_5_ms_to_1000_s_per_key() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(clock=clock, burst=10**6)
    for failures in range(20):
        backoff = min(1000.0, 0.005 * 2**failures)  # client-go's 5 ms doubling, capped
        started = clock.now
        queue.add_rate_limited("ns/a")
        clock.now = started + backoff * 0.99
        assert queue.get(timeout=0) is None  # not before its backoff
        clock.now = started + backoff
        assert queue.get(timeout=0) == "ns/a"
        queue.done("ns/a")
    assert queue.retries("ns/a") == 20
    queue.forget("ns/a")
    assert queue.retries("ns/a") == 0
    started = clock.now
    queue.add_rate_limited("ns/a")
    clock.now = started + 0.005
    assert queue.get(timeout=0) == "ns/a"  # from the shortest backoff again


def test_retries_of_all_keys_share_a_bucket_of_10_per_second() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    for n in range(110):  # each key's first retry: 5 ms, but only 100 tokens at once
        queue.add_rate_limited(f"ns/k{n}")
    clock.now += 0.005
    assert len(drain(queue)) == 100
    clock.now += 0.5  # the 101st token was due 0.1 s after the burst, the 105th at 0.5 s
    assert len(drain(queue)) == 5


def test_shutdown_wakes_a_waiting_worker() -> None:
    queue: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    time.sleep(0.05)
    queue.shutdown()
    worker.join(5)
    assert got == [None]
    queue.add("ns/a")
    assert queue.get(timeout=0) is None


def test_many_workers_never_hold_one_key_at_once_and_lose_no_change() -> None:
    queue: WorkQueue[str] = WorkQueue()
    holding: set[str] = set()
    seen: dict[str, int] = {}
    lock = threading.Lock()
    overlaps: list[str] = []

    def work() -> None:
        while (key := queue.get()) is not None:
            with lock:
                if key in holding:
                    overlaps.append(key)
                holding.add(key)
            time.sleep(0.0005)
            with lock:
                holding.discard(key)
                seen[key] = seen.get(key, 0) + 1
            queue.done(key)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for worker in workers:
        worker.start()
    for round_ in range(50):
        for n in range(20):
            queue.add(f"ns/k{n}", BACKLOG if round_ % 2 else LIVE)
    deadline = time.monotonic() + 10
    while len(queue) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    queue.shutdown()
    for worker in workers:
        worker.join(5)
    assert overlaps == []
    assert set(seen) == {f"ns/k{n}" for n in range(20)}  # every key processed after its adds


def test_a_named_queue_reports_controller_runtimes_metrics() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(name="metrics-test", clock=clock)
    labels = {"name": "metrics-test", "controller": "metrics-test"}

    def sample(name: str, **extra: str) -> float | None:
        return REGISTRY.get_sample_value(name, {**labels, **extra})

    for key in ("ns/a", "ns/b", "ns/a"):
        queue.add(key, BACKLOG)
    queue.add("ns/c")
    assert sample("workqueue_adds_total") == 3  # a key already waiting is not added again
    assert sample("workqueue_depth", priority="0") == 1
    assert sample("workqueue_depth", priority="-100") == 2
    clock.now += 2.0
    taken = queue.get(timeout=0)
    assert taken == "ns/c"  # the live change first
    assert sample("workqueue_queue_duration_seconds_sum") == 2.0
    clock.now += 0.5
    assert sample("workqueue_longest_running_processor_seconds") == 0.5
    assert sample("workqueue_unfinished_work_seconds") == 0.5
    queue.add_rate_limited(taken)
    queue.done(taken)
    assert sample("workqueue_retries_total") == 1
    assert sample("workqueue_work_duration_seconds_sum") == 0.5
    assert sample("workqueue_longest_running_processor_seconds") == 0.0
    assert sample("workqueue_depth", priority="-100") == 2
