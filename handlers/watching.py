"""WATCH of the kinds this server stores (R6), from the change log through the tailer.

The subscription is made first, then the starting state is read (a list for resourceVersion
unset or 0, the log after N otherwise), and live changes at or below what was already sent
are skipped: no gap, no duplicate. A label or field selector turns an object entering it into
ADDED and one leaving it into DELETED, as kube's watch cache does.
"""

from __future__ import annotations

import random
import time
from collections.abc import Generator, Iterator

import orjson

from handlers.contract import ApiRequest, Deps, WatchEvent, WatchResult
from handlers.errors import ApiError
from handlers.kinds import Kind
from handlers.params import non_negative
from store import Change, Predicate, Row
from store.tailer import Subscription

MIN_LIFETIME, MAX_LIFETIME = 1800.0, 3600.0  # kube-apiserver's 30-60 minutes
_WAIT = 1.0  # longest sleep between checks of the deadline and shutdown


def watch(request: ApiRequest, deps: Deps, match: Predicate | None) -> WatchResult:
    """Start a watch; ``match`` is the selectors' filter (None: everything)."""
    kind = request.kind
    if request.param("sendInitialEvents") in ("true", "1"):
        raise ApiError(
            422,
            "Invalid",
            'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: '
            "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
        )
    if deps.tailer is None:
        raise ApiError(503, "ServiceUnavailable", "watch is not available")
    lifetime = _lifetime(request.param("timeoutSeconds"))
    version = request.param("resourceVersion")
    subscription = deps.tailer.subscribe(kind.plural, request.namespace)
    try:
        if version in ("", "0"):
            page = deps.store.list(kind.plural, request.namespace, match=match)
            initial = [WatchEvent("ADDED", row.body) for row in page.rows]
            start, replay = page.revision, False
        else:
            start, initial, replay = non_negative(version, "resource version"), [], True
    except BaseException:
        deps.tailer.unsubscribe(subscription)
        raise
    stream = _Stream(request, deps, subscription, match or _everything, start)
    return WatchResult(stream.run(initial, replay, lifetime))


def _everything(row: Row) -> bool:
    return True


def _lifetime(value: str) -> float:
    seconds = non_negative(value, "timeoutSeconds") if value else 0
    if not seconds:  # unset and 0 both mean the server's choice, as in kube
        return random.uniform(MIN_LIFETIME, MAX_LIFETIME)
    return float(seconds)


class _Stream:
    """The events of one watch."""

    def __init__(
        self, request: ApiRequest, deps: Deps, sub: Subscription, match: Predicate, start: int
    ) -> None:
        self._kind: Kind = request.kind
        self._namespace = request.namespace
        self._bookmarks = request.param("allowWatchBookmarks") in ("true", "1")
        self._deps = deps
        self._sub = sub
        self._match = match
        self._last = start

    def run(self, initial: list[WatchEvent], replay: bool, lifetime: float) -> Iterator[WatchEvent]:
        tailer = self._deps.tailer
        assert tailer is not None
        try:
            yield from initial
            if replay:
                expired = yield from self._replay()
                if expired:
                    return
            deadline = time.monotonic() + lifetime
            bookmark_at = time.monotonic() + self._deps.bookmark_seconds
            while not self._deps.stopping.is_set() and not self._sub.overflowed:
                now = time.monotonic()
                if now >= deadline:
                    return
                seen = tailer.revision
                for change in self._sub.take(min(_WAIT, deadline - now)):
                    yield from self._event(change)
                if self._bookmarks and time.monotonic() >= bookmark_at:
                    bookmark_at = time.monotonic() + self._deps.bookmark_seconds
                    yield self._bookmark(max(self._last, seen))
        finally:
            tailer.unsubscribe(self._sub)

    def _replay(self) -> Generator[WatchEvent, None, bool]:
        """The logged changes after the start revision; True when those are compacted away."""
        store = self._deps.store
        start = self._last
        while True:
            changes, compacted = store.changes(self._last, resource=self._kind.plural)
            if start < compacted:
                yield _expired(start, compacted)
                return True
            for change in changes:
                yield from self._event(change)
            if len(changes) < 500:
                return False

    def _event(self, change: Change) -> Iterator[WatchEvent]:
        if change.revision <= self._last:
            return
        self._last = change.revision
        if self._namespace is not None and change.row.namespace != self._namespace:
            return
        if change.type == "DELETED":
            if self._match(change.row):
                yield WatchEvent("DELETED", change.row.body)
            return
        now = self._match(change.row)
        before = change.previous is not None and self._match(change.previous)
        if now:
            yield WatchEvent("MODIFIED" if before else "ADDED", change.row.body)
        elif before and change.previous is not None:
            yield WatchEvent("DELETED", change.previous.body)

    def _bookmark(self, revision: int) -> WatchEvent:
        body = {
            "kind": self._kind.kind,
            "apiVersion": self._kind.api_version,
            "metadata": {"resourceVersion": str(revision)},
        }
        return WatchEvent("BOOKMARK", orjson.dumps(body))


def _expired(requested: int, oldest: int) -> WatchEvent:
    status = ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})").status()
    return WatchEvent("ERROR", orjson.dumps(status))
