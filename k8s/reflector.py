"""client-go's reflector, small: keep a copy of a cluster collection by listing it (in pages),
then watching it from the list's resourceVersion, resuming from the last one seen, and listing
again when the cluster says that version is gone (410).

What the copy is for stays with the caller: ``replace`` takes a whole list, ``apply`` one
watch event. The Task controller and the search's Task indexer both follow Tasks this way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from k8s.client import Cluster, ClusterError

log = logging.getLogger("k8s.reflector")

PAGE_SIZE = 500
WATCH_SECONDS = 300  # one watch request; the reflector watches again from where it stopped
RETRY_SECONDS = 2.0
IDLE_GRACE_SECONDS = 15
GONE = 410

Replace = Callable[[list[dict[str, Any]], str], None]
"""Every object of the collection, and the resourceVersion they were read at."""
Apply = Callable[[str, dict[str, Any]], None]
"""One change: ADDED, MODIFIED or DELETED, and the object."""


class Reflector:
    """Follows the collection at ``path`` until ``stop`` is set or ``going()`` turns false
    (checked between events, and at least every ``watch_seconds``)."""

    def __init__(
        self,
        cluster: Cluster,
        path: str,
        *,
        replace: Replace,
        apply: Apply,
        stop: threading.Event,
        going: Callable[[], bool] = lambda: True,
        page_size: int = PAGE_SIZE,
        watch_seconds: int = WATCH_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._cluster = cluster
        self._path = path
        self._replace = replace
        self._apply = apply
        self._stop = stop
        self._going = going
        self._page_size = page_size
        self._watch_seconds = watch_seconds
        self._retry_seconds = retry_seconds

    def run(self) -> None:
        while self._on():
            try:
                revision = self._list()
                while revision and self._on():
                    revision = self._watch(revision)
            except ClusterError as error:
                log.warning("%s: the cluster failed: %s", self._path, error)
                self._stop.wait(self._retry_seconds)

    def _on(self) -> bool:
        return not self._stop.is_set() and self._going()

    def _list(self) -> str:
        """List every page, then hand the whole list over; a page whose continue token
        expired (410) starts the list again."""
        items: list[dict[str, Any]] = []
        params = {"limit": str(self._page_size)}
        while True:
            try:
                listed = self._cluster.get(self._path, params)
            except ClusterError as error:
                if error.status != GONE or "continue" not in params:
                    raise
                items, params = [], {"limit": str(self._page_size)}
                continue
            items.extend(listed.get("items") or [])
            meta = listed.get("metadata") or {}
            if not meta.get("continue"):
                revision = str(meta.get("resourceVersion", ""))
                self._replace(items, revision)
                return revision
            params = {"limit": str(self._page_size), "continue": meta["continue"]}

    def _watch(self, revision: str) -> str:
        """Follow from ``revision``; the revision to resume from ("" to list again)."""
        try:
            stream = self._cluster.watch(
                self._path,
                {
                    "resourceVersion": revision,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": str(self._watch_seconds),
                },
                # the server ends the watch by then: silence past it is a dead connection
                idle_timeout=self._watch_seconds + IDLE_GRACE_SECONDS,
            )
        except ClusterError as error:
            if error.status == GONE:
                return ""
            raise
        try:
            for event in stream:
                if not self._on():
                    break
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    log.info("%s: the watch ended (%s): listing again", self._path, obj)
                    return ""
                revision = str((obj.get("metadata") or {}).get("resourceVersion") or revision)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._apply(str(kind), obj)
        finally:
            stream.close()
        return revision
