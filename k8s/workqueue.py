"""A work queue as controllers use them (client-go's ``workqueue``, controller-runtime's
priority queue), for the Task controller's workers.

- Items are keys (``namespace/name``): a key added again while it waits is queued once.
- A key is never handed to two workers at once: added while a worker holds it, it waits
  until that worker is done with it, then is queued again.
- Two priorities: a live change is handed out before the initial list's backlog (and
  resyncs), so it is handled within moments even behind thousands of queued items, as
  controller-runtime's priority queue does since v0.20. A waiting key added again at the
  higher priority moves up.
- Retries wait as client-go's ``DefaultControllerRateLimiter`` says: the longer of a per-key
  exponential backoff (5 ms, doubling, at most 1,000 s) and an overall token bucket (10 per
  second, bursts of 100); ``forget`` clears a key's backoff once it succeeds.

A queue given a ``name`` reports controller-runtime's ``workqueue_*`` metrics under it
(:mod:`k8s.controllermetrics`). No well-kept Python library offers this (kopf's is part of its
own framework), so it is small and written here.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from k8s.controllermetrics import (
    ADDS,
    QUEUE_DURATION,
    QUEUE_GAUGES,
    RETRIES,
    WORK_DURATION,
    QueueState,
)

LIVE, BACKLOG = 0, 1
"""Priorities: a watch's change, and an item of the initial list or a resync."""

K = TypeVar("K", bound=Hashable)


class _Bucket:
    """A token bucket: when the next token is due, at ``rate`` per second, ``burst`` at most."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def delay(self) -> float:
        """Take a token (perhaps one not there yet): the wait until it is."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


class WorkQueue(Generic[K]):
    """Keys for workers: ``get`` one, process it, ``done`` with it (see the module)."""

    def __init__(
        self,
        *,
        name: str = "",
        base_delay: float = 0.005,
        max_delay: float = 1000.0,
        rate: float = 10.0,
        burst: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._base, self._max = base_delay, max_delay
        self._bucket = _Bucket(rate, burst, clock)
        self._failures: dict[K, int] = {}
        self._lines: tuple[collections.deque[K], ...] = (collections.deque(), collections.deque())
        self._waiting: dict[K, int] = {}  # key -> the priority it waits at (or will, once done)
        self._processing: dict[K, float] = {}  # key -> when a worker took it
        self._since: dict[K, float] = {}  # waiting key -> when it was added
        self._later: list[tuple[float, int, K]] = []  # (due, order, key): retries
        self._order = itertools.count()
        self._shut = False
        self._cond = threading.Condition()
        labels = (name, name)
        self._adds = ADDS.labels(*labels) if name else None
        self._retried = RETRIES.labels(*labels) if name else None
        self._queued = QUEUE_DURATION.labels(*labels) if name else None
        self._worked = WORK_DURATION.labels(*labels) if name else None
        if name:
            QUEUE_GAUGES.watch(name, self.state)

    def add(self, key: K, priority: int = LIVE) -> None:
        """Queue ``key`` (once, however often it is added before a worker takes it)."""
        with self._cond:
            self._add(key, priority)

    def add_rate_limited(self, key: K) -> None:
        """Queue ``key`` again after its backoff: a retry of a failed reconcile."""
        with self._cond:
            if self._shut:
                return
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            if self._retried is not None:
                self._retried.inc()
            backoff = min(self._max, self._base * 2**failures)
            due = self._clock() + max(backoff, self._bucket.delay())
            heapq.heappush(self._later, (due, next(self._order), key))
            self._cond.notify()

    def forget(self, key: K) -> None:
        """``key`` succeeded: its next retry starts from the shortest backoff again."""
        with self._cond:
            self._failures.pop(key, None)

    def retries(self, key: K) -> int:
        """How many times ``key`` has been queued for a retry since it last succeeded."""
        with self._cond:
            return self._failures.get(key, 0)

    def get(self, timeout: float | None = None) -> K | None:
        """The next key, which this worker now holds until ``done``; None when the queue is
        shut down or nothing came within ``timeout`` seconds."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while not self._shut:
                now = self._clock()
                while self._later and self._later[0][0] <= now:
                    self._add(heapq.heappop(self._later)[2], LIVE)
                key = self._next()
                if key is not None:
                    return key
                if deadline is not None and now >= deadline:
                    return None
                due = self._later[0][0] if self._later else None
                wake = [t for t in (deadline, due) if t is not None]
                self._cond.wait(max(0.0, min(wake) - now) if wake else None)
            return None

    def done(self, key: K) -> None:
        """The worker is done with ``key``: if it was added meanwhile, it is queued again."""
        with self._cond:
            started = self._processing.pop(key, None)
            if self._worked is not None and started is not None:
                self._worked.observe(self._clock() - started)
            priority = self._waiting.get(key)
            if priority is not None:
                self._lines[priority].append(key)
                self._cond.notify()

    def shutdown(self) -> None:
        """Hand out nothing more; every ``get`` returns None."""
        with self._cond:
            self._shut = True
            self._cond.notify_all()

    def __len__(self) -> int:
        """Keys waiting for a worker (the queue's depth)."""
        with self._cond:
            return sum(1 for key in self._waiting if key not in self._processing)

    def state(self) -> QueueState:
        """Keys waiting by priority, and how long each key held by a worker has run."""
        with self._cond:
            waiting = [0] * len(self._lines)
            for key, priority in self._waiting.items():
                if key not in self._processing:
                    waiting[priority] += 1
            now = self._clock()
            running = tuple(now - started for started in self._processing.values())
            return QueueState(tuple(waiting), running)

    def _add(self, key: K, priority: int) -> None:
        if self._shut:
            return
        queued = self._waiting.get(key)
        if queued is not None and queued <= priority:
            return
        if queued is None:
            self._since[key] = self._clock()
            if self._adds is not None:
                self._adds.inc()
        self._waiting[key] = priority
        if key not in self._processing:
            self._lines[priority].append(key)  # an entry at a lower priority is now stale
            self._cond.notify()

    def _next(self) -> K | None:
        for priority, line in enumerate(self._lines):
            while line:
                key = line.popleft()
                if self._waiting.get(key) == priority and key not in self._processing:
                    del self._waiting[key]
                    now = self._clock()
                    self._processing[key] = now
                    since = self._since.pop(key, now)
                    if self._queued is not None:
                        self._queued.observe(now - since)
                    return key
        return None
