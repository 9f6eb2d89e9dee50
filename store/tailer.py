"""One log tailer per process fans changes out to that process's watches.

The tailer reads the change log in revision order (no query per watcher per event) and hands
each change to the subscriptions of its resource through bounded queues. A subscription whose
queue is full is closed rather than slowing the others: its client resumes from its last
resourceVersion, as with kube-apiserver's watch cache.
"""

from __future__ import annotations

import collections
import logging
import threading

from store import Change, Store

log = logging.getLogger("apiserver.store")

QUEUE_SIZE = 1000


class Subscription:
    """The changes of one resource (optionally one namespace) after subscribing."""

    def __init__(self, resource: str, namespace: str | None, size: int = QUEUE_SIZE) -> None:
        self.resource = resource
        self.namespace = namespace
        self.overflowed = False
        self._size = size
        self._items: collections.deque[Change] = collections.deque()
        self._ready = threading.Condition()

    def offer(self, change: Change) -> bool:
        """Queue a change; False (and closed) when the reader fell too far behind."""
        with self._ready:
            if self.overflowed:
                return False
            if len(self._items) >= self._size:
                self.overflowed = True
                self._items.clear()
                self._ready.notify()
                return False
            self._items.append(change)
            self._ready.notify()
            return True

    def take(self, timeout: float) -> list[Change]:
        """Everything queued, waiting up to ``timeout`` seconds for something."""
        with self._ready:
            if not self._items and not self.overflowed:
                self._ready.wait(timeout)
            items = list(self._items)
            self._items.clear()
            return items


class Tailer:
    """Polls the log of ``store`` and feeds the subscriptions of this process."""

    def __init__(self, store: Store, *, interval: float = 0.02) -> None:
        self._store = store
        self._interval = interval
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[Subscription]] = collections.defaultdict(set)
        self._wake = threading.Event()
        self.revision = store.revision()
        self._thread = threading.Thread(target=self._run, name="log-tailer", daemon=True)
        self._thread.start()

    def subscribe(self, resource: str, namespace: str | None) -> Subscription:
        """Receive every change of ``resource`` after the tailer's current revision."""
        subscription = Subscription(resource, namespace)
        with self._lock:
            self._subscriptions[resource].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions[subscription.resource].discard(subscription)

    def poke(self) -> None:
        """A local write happened: read the log now rather than at the next tick."""
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._drain()
            except Exception:
                log.exception("reading the change log failed")

    def _drain(self) -> None:
        while True:
            changes, _ = self._store.changes(self.revision)
            for change in changes:
                with self._lock:
                    targets = list(self._subscriptions.get(change.resource, ()))
                for subscription in targets:
                    wanted = subscription.namespace in (None, change.row.namespace)
                    if wanted and not subscription.offer(change):
                        self.unsubscribe(subscription)
                self.revision = change.revision
            if len(changes) < 500:
                return
