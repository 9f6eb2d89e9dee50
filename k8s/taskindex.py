"""The search index of the cluster's Tasks (tutorial part 3), kept in this server's store.

One process among all those sharing the store holds the indexer's role (:meth:`Store.lead`:
a file lock on SQLite, an advisory lock on PostgreSQL); it follows the Tasks with a
:class:`k8s.reflector.Reflector`, so tasks created before the server started are indexed by
the first list, every change after it within a watch event's delay, and a relist after a 410
replaces the whole index of Tasks. The others try to take the role every few seconds, and one
of them does when the holder ends.

Also here: the key a Task is known by in ``details``' plain-text answer, which the controller
writes in the Task's ``example.example.com/task-indexer`` label.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from k8s import paths
from k8s.client import Cluster
from k8s.metrics import INDEXED
from k8s.reflector import Reflector
from store import Store
from store.fulltext import Document, task_document

log = logging.getLogger("k8s.taskindex")

RESOURCE = f"tasks.{paths.TASK_GROUP}"
"""Where the store keeps the documents of cluster Tasks: kube's ``resource.group`` form, unlike
any resource of this server's group (those are kept under their plural alone)."""
KIND = "Task"
API_VERSION = f"{paths.TASK_GROUP}/{paths.TASK_VERSION}"
ROLE = "task-indexer"
INDEXER_LABEL = "example.example.com/task-indexer"
LABEL_LIMIT = 63  # characters of a label value
TAKEOVER_SECONDS = 5.0  # how often a process without the role tries to take it
WATCH_SECONDS = 60  # the holder checks it still holds the role at least this often


def indexer_key(namespace: str, name: str, generation: int) -> str:
    """``<namespace>.<name>.<generation>`` (``<name>.<generation>`` at the cluster scope), the
    tutorial's key; when that would not fit a label value, the start of it, a hash of the
    whole name and the generation: still unique, still ending in the generation."""
    scoped = f"{namespace}.{name}" if namespace else name
    key = f"{scoped}.{generation}"
    if len(key) <= LABEL_LIMIT:
        return key
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:10]
    tail = f"-{digest}.{generation}"
    return scoped[: LABEL_LIMIT - len(tail)].rstrip("-.") + tail


def document(task: dict[str, Any]) -> Document:
    return task_document(KIND, task)


class TaskIndexer:
    """Keeps the store's documents of cluster Tasks while it holds the indexer's role."""

    def __init__(self, store: Store, cluster: Cluster, stop: threading.Event) -> None:
        self._store = store
        self._cluster = cluster
        self._stop = stop

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._index_while_leading()
            except Exception:  # the store failing: try again, as for the cluster
                log.exception("the Task indexer failed")
            self._stop.wait(TAKEOVER_SECONDS)

    def _index_while_leading(self) -> None:
        leadership = self._store.lead(ROLE)
        if leadership is None:
            return
        log.info("indexing the cluster's Tasks")
        try:
            Reflector(
                self._cluster,
                paths.tasks(),
                replace=self._replace,
                apply=self._apply,
                stop=self._stop,
                going=leadership.held,
                watch_seconds=WATCH_SECONDS,
            ).run()
        finally:
            leadership.release()

    def _replace(self, tasks: list[dict[str, Any]], revision: str) -> None:
        self._store.reindex(RESOURCE, {_key(task): document(task) for task in tasks})
        INDEXED.labels("relist").inc()

    def _apply(self, kind: str, task: dict[str, Any]) -> None:
        namespace, name = _key(task)
        self._store.index(RESOURCE, namespace, name, None if kind == "DELETED" else document(task))
        INDEXED.labels("event").inc()


def _key(task: dict[str, Any]) -> tuple[str, str]:
    metadata = task["metadata"]
    return str(metadata.get("namespace") or ""), str(metadata["name"])


def start_task_indexer(store: Store, cluster: Cluster, stop: threading.Event) -> threading.Thread:
    """Run a :class:`TaskIndexer` in a daemon thread."""
    thread = threading.Thread(
        target=TaskIndexer(store, cluster, stop).run, name="task-indexer", daemon=True
    )
    thread.start()
    return thread
