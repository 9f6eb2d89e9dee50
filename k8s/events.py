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
from typing import Any

import cachetools

from k8s.client import Cluster, ClusterError

TASK_UID = "example.example.com/task-uid"

ByTask = dict[str, list[dict[str, Any]]]  # task uid -> its Events, oldest first
_EVERYWHERE = ""  # the key of the in-flight cluster-wide LIST


class TaskEvents:
    """Events by task, per namespace, cached for ``ttl`` seconds (failures ``failure_ttl``)."""

    def __init__(
        self, cluster: Cluster, *, ttl: float = 2.0, failure_ttl: float = 1.0, maxsize: int = 4096
    ) -> None:
        self._cluster = cluster
        self._entries: cachetools.TTLCache[str, ByTask] = cachetools.TTLCache(maxsize, ttl)
        self._failures: cachetools.TTLCache[str, ClusterError] = cachetools.TTLCache(
            maxsize, failure_ttl
        )
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Event] = {}

    def in_namespace(self, namespace: str) -> ByTask:
        """The Events of the tasks of ``namespace``; ClusterError when they cannot be read."""
        while True:
            with self._lock:
                found = self._cached(namespace)
                if found is not None:
                    return found
                loading = self._loading.get(namespace) or self._loading.get(_EVERYWHERE)
                if loading is None:
                    self._loading[namespace] = threading.Event()
                    break
            loading.wait()
        return self._load(namespace, f"/api/v1/namespaces/{namespace}/events", [namespace])

    def everywhere(self, namespaces: Iterable[str]) -> Mapping[str, ByTask]:
        """The Events of the tasks of ``namespaces``, by namespace: one cluster-wide LIST
        unless every one of them is cached already."""
        wanted = set(namespaces)
        while True:
            with self._lock:
                cached = {ns: self._cached(ns) for ns in wanted}
                if all(events is not None for events in cached.values()):
                    return {ns: events for ns, events in cached.items() if events is not None}
                loading = self._loading.get(_EVERYWHERE)
                if loading is None:
                    self._loading[_EVERYWHERE] = threading.Event()
                    break
            loading.wait()
        self._load(_EVERYWHERE, "/api/v1/events", wanted)
        with self._lock:
            return {ns: self._entries.get(ns) or {} for ns in wanted}

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
                others = [e for e in entry.get(task, []) if _uid(e) != metadata.get("uid")]
                if kind != "DELETED":
                    others.append(dict(event))
                entry[task] = sorted(others, key=_when)
        return str(task)

    def _cached(self, namespace: str) -> ByTask | None:
        failure = self._failures.get(namespace) or self._failures.get(_EVERYWHERE)
        if failure is not None:
            raise failure
        return self._entries.get(namespace)

    def _load(self, key: str, path: str, namespaces: Iterable[str]) -> ByTask:
        """LIST ``path`` and file its Events under ``namespaces`` (and any other they span);
        whatever happens, the callers waiting for this LIST are woken."""
        try:
            listed = self._cluster.get(path, {"labelSelector": TASK_UID})
            grouped = _by_namespace(listed.get("items") or [], namespaces)
            with self._lock:
                for namespace, by_task in grouped.items():
                    self._entries[namespace] = by_task
            return grouped.get(key, {})
        except ClusterError as error:
            with self._lock:
                self._failures[key] = error
            raise
        finally:
            with self._lock:
                self._loading.pop(key).set()


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
