"""The Events of Tasks, read from the cluster in batches: one LIST per namespace per TTL window.

The controller labels each Event it records with ``example.example.com/task-uid``. One
namespace's Events are listed once with the selector "has that label" (never an ``in (...)``
of UIDs that grows with the page), grouped by task, and kept for a short TTL; concurrent
misses for a namespace wait for the one LIST in flight; a failed LIST is remembered briefly
so that a broken cluster is not hammered. An all-namespaces read makes one cluster-wide LIST
that fills the entries of every namespace it covers. Open watches keep cached entries fresh
with the Events they see.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cachetools

from k8s import paths
from k8s.client import Cluster, ClusterError
from k8s.metrics import EVENTS_HIT, EVENTS_MISS

TASK_UID = "example.example.com/task-uid"

ByTask = dict[str, list[dict[str, Any]]]  # task uid -> its Events, oldest first
_EVERYWHERE = ""  # the key of the cluster-wide LIST


@dataclass(slots=True)
class _Listed:
    revision: str  # of the LIST: a watch of Events from here misses nothing
    by_task: ByTask


class TaskEvents:
    """Events by task, per namespace, cached for ``ttl`` seconds (failures ``failure_ttl``)."""

    def __init__(
        self, cluster: Cluster, *, ttl: float = 2.0, failure_ttl: float = 1.0, maxsize: int = 4096
    ) -> None:
        self._cluster = cluster
        self._entries: cachetools.TTLCache[str, _Listed] = cachetools.TTLCache(maxsize, ttl)
        self._failures: cachetools.TTLCache[str, ClusterError] = cachetools.TTLCache(
            maxsize, failure_ttl
        )
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Event] = {}

    def in_namespace(self, namespace: str) -> ByTask:
        """The Events of the tasks of ``namespace``; ClusterError when they cannot be read."""
        return self._listed({namespace}, namespace)[namespace].by_task

    def everywhere(self, namespaces: Iterable[str]) -> Mapping[str, ByTask]:
        """The Events of the tasks of ``namespaces``, by namespace: one cluster-wide LIST
        unless every one of them is cached already."""
        found = self._listed(set(namespaces), _EVERYWHERE)
        return {namespace: listed.by_task for namespace, listed in found.items()}

    def revision(self, namespace: str | None) -> str:
        """The resourceVersion the cached Events of ``namespace`` (None: of all) were listed at."""
        key = namespace or _EVERYWHERE
        return self._listed({key}, key)[key].revision

    def forget(self, namespace: str | None) -> None:
        """Drop a cached entry (a watch from its revision was told it is too old)."""
        with self._lock:
            self._entries.pop(namespace or _EVERYWHERE, None)

    def observe(self, kind: str, event: Mapping[str, Any]) -> str | None:
        """Apply an Event seen by a watch to the cached entry of its namespace, if any; the
        uid of its task, or None when it is not a task's Event."""
        metadata = event.get("metadata") or {}
        task = (metadata.get("labels") or {}).get(TASK_UID)
        if not task:
            return None
        with self._lock:
            entry = self._entries.get(metadata.get("namespace", ""))
            if entry is not None:
                events = entry.by_task.get(task, [])
                others = [e for e in events if _uid(e) != metadata.get("uid")]
                if kind != "DELETED":
                    others.append(dict(event))
                entry.by_task[task] = sorted(others, key=_when)
        return str(task)

    def _listed(self, keys: set[str], source: str) -> dict[str, _Listed]:
        """The entries of ``keys``, after one LIST of ``source`` (a namespace, or everywhere)
        if one is missing; concurrent callers wait for the LIST in flight."""
        while True:
            with self._lock:
                failure = self._failures.get(source)
                if failure is not None:
                    raise failure
                found = {key: self._entries.get(key) for key in keys}
                if all(listed is not None for listed in found.values()):
                    EVENTS_HIT.inc()
                    return {key: listed for key, listed in found.items() if listed is not None}
                # A cluster-wide LIST in flight may bring a namespace too: wait for it first.
                loading = self._loading.get(source) or self._loading.get(_EVERYWHERE)
                if loading is None:
                    self._loading[source] = threading.Event()
                    EVENTS_MISS.inc()
                    break
            loading.wait()
        listed = self._load(source, keys)
        return {key: listed.get(key) or _Listed(listed[source].revision, {}) for key in keys}

    def _load(self, source: str, keys: set[str]) -> dict[str, _Listed]:
        """LIST the Events of ``source`` and file them by namespace; whatever happens, the
        callers waiting for this LIST are woken."""
        try:
            listed = self._cluster.get(paths.events(source or None), {"labelSelector": TASK_UID})
            revision = str((listed.get("metadata") or {}).get("resourceVersion", ""))
            grouped = _by_namespace(listed.get("items") or [], keys | {source})
            entries = {ns: _Listed(revision, by_task) for ns, by_task in grouped.items()}
            with self._lock:
                self._entries.update(entries)
            return entries
        except ClusterError as error:
            with self._lock:
                self._failures[source] = error
            raise
        finally:
            with self._lock:
                self._loading.pop(source).set()


def _by_namespace(events: list[dict[str, Any]], namespaces: Iterable[str]) -> dict[str, ByTask]:
    grouped: dict[str, ByTask] = {ns: {} for ns in namespaces}
    for event in events:
        metadata = event.get("metadata") or {}
        task = (metadata.get("labels") or {}).get(TASK_UID)
        if task:
            by_task = grouped.setdefault(metadata.get("namespace", ""), {})
            by_task.setdefault(task, []).append(event)
    for by_task in grouped.values():
        for task_events in by_task.values():
            task_events.sort(key=_when)
    return grouped


def _uid(event: Mapping[str, Any]) -> Any:
    return (event.get("metadata") or {}).get("uid")


def _when(event: Mapping[str, Any]) -> tuple[str, str]:
    """When an Event first happened (RFC 3339 text compares in time order), then its name."""
    metadata = event.get("metadata") or {}
    first = (
        event.get("firstTimestamp")
        or event.get("eventTime")
        or metadata.get("creationTimestamp")
        or ""
    )
    return str(first), str(metadata.get("name", ""))
