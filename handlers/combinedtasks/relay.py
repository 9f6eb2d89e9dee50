"""One combinedtasks watch: a thread reading the cluster's Task watch, one following the
labelled Events (so that a newly recorded Event reaches open watches as a MODIFIED
CombinedTask), and the request's thread turning what they read into CombinedTask events.

These watches are few and each proxies a cluster watch, so they are not carried by the
fan-out of stored kinds."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

import orjson

from handlers.api import GROUP_VERSION
from handlers.api.watch import WatchEvent
from handlers.combinedtasks.join import KIND, combine, namespace_of, uid_of, upstream_error
from k8s import paths
from k8s.client import ClusterError, WatchStream
from k8s.events import TASK_UID
from k8s.upstream import Upstream

log = logging.getLogger("apiserver.combined")

_TICK = 1.0  # longest wait before looking at the deadline and at shutdown
_RETRY = 1.0  # pause before re-watching Events after the cluster failed


class Relay:
    """One combinedtasks watch: a thread reading the Task watch, one following the Events,
    and the request's thread turning what they read into CombinedTask events."""

    def __init__(
        self,
        upstream: Upstream,
        namespace: str | None,
        tasks: WatchStream,
        selects: Callable[[Mapping[str, Any]], bool],
        deadline: float,
        stopping: threading.Event,
    ) -> None:
        self._upstream = upstream
        self._namespace = namespace
        self._tasks = tasks
        self._deadline = deadline
        self._stopping = stopping
        self._over = threading.Event()
        self._events: WatchStream | None = None
        self._inbox: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._known: dict[str, dict[str, Any]] = {}  # uid -> the latest Task seen
        self._selects = selects

    def events(self) -> Generator[WatchEvent, None, None]:
        threading.Thread(target=self._read_tasks, name="combined-tasks", daemon=True).start()
        threading.Thread(target=self._read_events, name="combined-events", daemon=True).start()
        try:
            while not self._stopping.is_set():
                left = self._deadline - time.monotonic()
                if left <= 0:
                    return
                try:
                    source, item = self._inbox.get(timeout=min(_TICK, left))
                except queue.Empty:
                    continue
                if source == "end":
                    return
                made = self._from_task(item) if source == "task" else self._from_event(item)
                if made is not None:
                    yield made
                    if made.type == "ERROR":
                        return
        finally:
            self._over.set()
            self._tasks.close()
            if self._events is not None:
                self._events.close()

    def _from_task(self, event: dict[str, Any]) -> WatchEvent | None:
        kind, task = str(event.get("type", "")), event.get("object") or {}
        if kind == "ERROR":
            return WatchEvent(kind, orjson.dumps(task))
        if kind == "BOOKMARK":
            bookmark = {"kind": KIND, "apiVersion": GROUP_VERSION, "metadata": task["metadata"]}
            return WatchEvent(kind, orjson.dumps(bookmark))
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return None
        uid = uid_of(task)
        if kind == "DELETED":
            self._known.pop(uid, None)
        else:
            self._known[uid] = task
        return self._joined(kind, task)

    def _from_event(self, event: dict[str, Any]) -> WatchEvent | None:
        """A labelled Event was recorded, changed or removed: its task changed too."""
        recorded = event.get("object") or {}
        uid = self._upstream.events.observe(str(event.get("type")), recorded)
        if uid is None:
            return None
        task = self._known.get(uid) or self._fetch(uid, recorded)
        return None if task is None else self._joined("MODIFIED", task)

    def _fetch(self, uid: str, recorded: Mapping[str, Any]) -> dict[str, Any] | None:
        """The task an Event is about, when this watch has not seen it (a watch from a
        resourceVersion starts with no task) and it is one the watch selects."""
        involved = recorded.get("involvedObject") or {}
        namespace = involved.get("namespace") or namespace_of(recorded)
        if not involved.get("name") or not namespace:
            return None
        try:
            task = self._upstream.cluster.get(paths.tasks(namespace, involved["name"]))
        except ClusterError:
            return None
        if uid_of(task) != uid or not self._selects(task):
            return None
        self._known[uid] = task
        return task

    def _joined(self, kind: str, task: dict[str, Any]) -> WatchEvent:
        try:
            by_task = self._upstream.events.in_namespace(namespace_of(task))
        except ClusterError as error:
            status = upstream_error(error).status()
            return WatchEvent("ERROR", orjson.dumps(status))
        return WatchEvent(kind, orjson.dumps(combine(task, by_task.get(uid_of(task), []))))

    def _read_tasks(self) -> None:
        try:
            for event in self._tasks:
                self._inbox.put(("task", event))
        except ClusterError as error:
            if not self._over.is_set():
                log.info("the Task watch failed: %s", error)
        finally:
            self._inbox.put(("end", {}))

    def _read_events(self) -> None:
        """Follow the labelled Events from the revision the cache listed them at, so none is
        missed; resume after a failure from the last revision seen, or list again after 410."""
        events = self._upstream.events
        revision = ""
        while not self._over.is_set():
            try:
                revision = revision or events.revision(self._namespace)
                left = max(1, round(self._deadline - time.monotonic()))
                self._events = self._upstream.cluster.watch(
                    paths.events(self._namespace),
                    {
                        "labelSelector": TASK_UID,
                        "resourceVersion": revision,
                        "allowWatchBookmarks": "true",
                        "timeoutSeconds": str(left),
                    },
                )
                for event in self._events:
                    if event.get("type") == "ERROR":  # too old: the cache lists again
                        events.forget(self._namespace)
                        revision = ""
                        break
                    metadata = (event.get("object") or {}).get("metadata") or {}
                    revision = str(metadata.get("resourceVersion") or revision)
                    if event.get("type") != "BOOKMARK":
                        self._inbox.put(("event", event))
            except ClusterError as error:
                if self._over.is_set():
                    return
                log.info("the Events watch failed: %s", error)
                self._over.wait(_RETRY)
