"""The store and the watch fan-out of this worker process: opened on first need, and the
reason when they cannot be, for ``/readyz``. Opening it starts its compactor and, with a
cluster, the search's Task indexer (which runs in one process of all that share the store)."""

from __future__ import annotations

import logging
import threading

from handlers.api.errors import ApiError, service_unavailable
from k8s.client import Cluster
from k8s.taskindex import start_task_indexer
from proxy import lifecycle
from proxy.fanout import FanOut
from proxy.settings import Settings
from store import Store
from store.compactor import start_compactor
from store.sqlite import SQLiteStore

log = logging.getLogger("apiserver")


def open_store(settings: Settings) -> Store:
    """PostgreSQL when a URL is set (several pods), else the embedded SQLite file."""
    if settings.database_url:
        from store.postgres import PostgresStore

        return PostgresStore(settings.database_url)
    return SQLiteStore(settings.sqlite_path)


class StoreHolder:
    """Opens the store on first need and remembers why it could not, for ``/readyz``."""

    def __init__(
        self,
        settings: Settings,
        store: Store | None,
        cluster: Cluster | None = None,
        stop: threading.Event = lifecycle.stopping,
    ) -> None:
        self._settings = settings
        self._store = store
        self._cluster = cluster  # whose Tasks the store's search index follows
        self._stop = stop
        self._fanout: FanOut | None = None
        self._error = ""
        self._lock = threading.Lock()

    def get(self) -> Store:
        """The open store; 503 while it cannot be opened."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    try:
                        self._store = open_store(self._settings)
                        start_compactor(self._store, self._stop)
                        if self._cluster is not None:
                            start_task_indexer(self._store, self._cluster, self._stop)
                    except Exception as ex:
                        self._error = str(ex)
                        log.warning("store not ready: %s", ex)
                        raise service_unavailable(f"the store is not ready: {ex}") from None
        return self._store

    def fanout(self) -> FanOut:
        """This process's watch fan-out, started on the first watch."""
        if self._fanout is None:
            store = self.get()
            with self._lock:
                if self._fanout is None:
                    threads = self._settings.threads
                    self._fanout = FanOut(
                        store,
                        lifecycle.stopping,
                        max_watches=threads - max(8, threads // 8),  # the rest: short requests
                        bookmark_seconds=self._settings.watch_bookmark_seconds,
                    )
        return self._fanout

    def written(self) -> None:
        """A write committed here: this process's watches need not wait for the next tick."""
        if self._fanout is not None:
            self._fanout.poke()

    def check(self) -> str:
        """Empty when the store is open, else the reason it is not."""
        try:
            self.get()
        except ApiError:
            return self._error or "not open"
        return ""
