"""Reads by key from many threads of one process, answered by few round trips.

etcd batches its linearizable reads the same way: a read that arrives while one is in flight
waits, and goes with the others that arrived meanwhile. Each key is still fetched by a call
that began after its caller asked, so nothing committed before a read began is missed.
Imported by the PostgreSQL store, whose gets would otherwise cost one round trip each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Caller(Generic[K, V]):
    """One waiting call: its key, then its answer (or error), or the lead."""

    __slots__ = ("answered", "error", "key", "leads", "value")

    def __init__(self, key: K) -> None:
        self.key = key
        self.value: V | None = None
        self.error: BaseException | None = None
        self.leads = False
        self.answered: threading.Lock | None = None  # a waiter's: held until it may go on


class Coalescer(Generic[K, V]):
    """:meth:`get` from any number of threads, through calls of ``fetch(keys)`` that each
    answer up to ``most`` callers (keys missing from its mapping are answered None).

    The first caller leads: it takes the callers queued so far (itself first), calls
    ``fetch`` once for them, answers them, and passes the lead to the first caller queued
    since, so that no caller answers for others for long. An error of ``fetch`` is raised
    in every caller of that call."""

    def __init__(self, fetch: Callable[[Sequence[K]], Mapping[K, V]], *, most: int) -> None:
        self._fetch, self._most = fetch, most
        self._lock = threading.Lock()
        self._queued: list[_Caller[K, V]] = []
        self._leading = False

    def get(self, key: K) -> V | None:
        """The value of ``key``, read by a ``fetch`` that began after this call did."""
        me: _Caller[K, V] = _Caller(key)
        with self._lock:
            self._queued.append(me)
            if self._leading:
                me.answered = threading.Lock()
                me.answered.acquire()
            else:
                self._leading = me.leads = True
        if me.answered is not None:
            me.answered.acquire()
        if me.leads:
            self._lead()
        if me.error is not None:
            raise me.error
        return me.value

    def _lead(self) -> None:
        """Fetch for the callers queued first (the leader among them), answer them, and
        pass the lead on or give it up."""
        with self._lock:
            batch, self._queued = self._queued[: self._most], self._queued[self._most :]
        try:
            found = self._fetch([caller.key for caller in batch])
        except BaseException as ex:  # every caller of this fetch gets its error
            for caller in batch:
                caller.error = ex
        else:
            for caller in batch:
                caller.value = found.get(caller.key)
        for caller in batch[1:]:
            assert caller.answered is not None
            caller.answered.release()
        with self._lock:
            if self._queued:
                following = self._queued[0]
                following.leads = True
                assert following.answered is not None
                following.answered.release()
            else:
                self._leading = False
