"""WATCH of the kinds this server stores (R6): what a watch sends, not how it is carried.

The proxy subscribes the watch's :class:`Follower` to its process's fan-out first, then asks
for the starting events (a list for resourceVersion unset or 0, the log after N otherwise);
live changes at or below what was already sent are skipped: no gap, no duplicate. A label or
field selector turns an object entering it into ADDED and one leaving it into DELETED, as
kube's watch cache does.
"""

from __future__ import annotations

import random
import time
from collections.abc import Hashable, Iterator

import orjson

from handlers.contract import ApiRequest, Deps, WatchEvent, WatchResult
from handlers.errors import ApiError
from handlers.kinds import Kind
from handlers.params import non_negative
from store import BATCH, Change, Predicate, Row, Store

MIN_LIFETIME, MAX_LIFETIME = 1800.0, 3600.0  # kube-apiserver's 30-60 minutes


def watch(request: ApiRequest, deps: Deps, match: Predicate | None) -> WatchResult:
    """Describe a watch; ``match`` is the selectors' filter (None: everything)."""
    if request.param("sendInitialEvents") in ("true", "1"):
        raise ApiError(
            422,
            "Invalid",
            'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: '
            "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
        )
    seconds = lifetime(request.param("timeoutSeconds"))
    version = request.param("resourceVersion")
    replay = version not in ("", "0")
    start = non_negative(version, "resource version") if replay else 0
    selectors = (request.param("labelSelector"), request.param("fieldSelector"))
    follower = Follower(request, match or _everything, selectors, start, seconds)

    def begin() -> Iterator[WatchEvent]:
        if replay:
            return follower.replay(deps.store)
        page = deps.store.list(follower.resource, follower.namespace, match=match)
        follower.last = page.revision
        return iter([WatchEvent("ADDED", row.body) for row in page.rows])

    return WatchResult(follower, begin)


def _everything(row: Row) -> bool:
    return True


def lifetime(value: str) -> float:
    """How long a watch lasts: ``timeoutSeconds``, or a random 30 to 60 minutes."""
    seconds = non_negative(value, "timeoutSeconds") if value else 0
    if not seconds:  # unset and 0 both mean the server's choice, as in kube
        return random.uniform(MIN_LIFETIME, MAX_LIFETIME)
    return float(seconds)


class Follower:
    """One watch's view of the change log: which changes it gets, and as which events."""

    def __init__(
        self,
        request: ApiRequest,
        match: Predicate,
        selectors: tuple[str, str],
        start: int,
        lifetime: float,
    ) -> None:
        self.kind: Kind = request.kind
        self.resource = request.kind.plural
        self.namespace = request.namespace
        self.bookmarks = request.param("allowWatchBookmarks") in ("true", "1")
        self.deadline = time.monotonic() + lifetime
        self.last = start  # the newest revision already sent (or skipped)
        self.expired = False  # the start revision was compacted: the watch ends after the ERROR
        # Watches with equal keys get equal events from a change: computed once for all.
        self.key: Hashable = (self.resource, self.namespace, selectors)
        self._match = match

    def replay(self, store: Store) -> Iterator[WatchEvent]:
        """The logged changes after the start revision, or a 410 ERROR if they are gone."""
        start = self.last
        while True:
            changes, compacted = store.changes(self.last, resource=self.resource)
            if start < compacted:
                self.expired = True
                yield _expired(start, compacted)
                return
            for change in changes:
                yield from self.follow(change)
            if len(changes) < BATCH:
                return

    def follow(
        self, change: Change, memo: dict[Hashable, list[WatchEvent]] | None = None
    ) -> list[WatchEvent]:
        """The events ``change`` makes on this watch; none for what was already sent.

        ``memo`` shares the work between the watches of one process that have equal keys."""
        if change.revision <= self.last:
            return []
        self.last = change.revision
        if memo is None:
            return self._events(change)
        key = (self.key, change.revision)
        events = memo.get(key)
        if events is None:
            events = memo[key] = self._events(change)
        return events

    def _events(self, change: Change) -> list[WatchEvent]:
        if self.namespace is not None and change.row.namespace != self.namespace:
            return []
        if change.type == "DELETED":
            return [WatchEvent("DELETED", change.row.body)] if self._match(change.row) else []
        now = self._match(change.row)
        before = change.previous is not None and self._match(change.previous)
        if now:
            return [WatchEvent("MODIFIED" if before else "ADDED", change.row.body)]
        if before and change.previous is not None:
            return [WatchEvent("DELETED", change.previous.body)]
        return []

    def bookmark(self, revision: int) -> WatchEvent:
        """A BOOKMARK: everything up to ``revision`` was sent."""
        body = {
            "kind": self.kind.kind,
            "apiVersion": self.kind.api_version,
            "metadata": {"resourceVersion": str(max(revision, self.last))},
        }
        return WatchEvent("BOOKMARK", orjson.dumps(body))


def _expired(requested: int, oldest: int) -> WatchEvent:
    status = ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})").status()
    return WatchEvent("ERROR", orjson.dumps(status))
