"""WATCH of a stored kind (R6): what a watch sends, not how it is carried.

The fan-out that carries the watch owns its cursor, deadline and expiry (``proxy/fanout.py``);
this gives it the log to follow, the starting state, and a pure function from a change to
its events. A label or field selector turns an object entering it into ADDED and one leaving
it into DELETED, as kube's watch cache does.
"""

from __future__ import annotations

import functools

from handlers.api.contract import ApiRequest, Deps, WatchResult
from handlers.api.errors import too_large_resource_version
from handlers.api.params import INT64_MAX, list_options, resource_version
from handlers.api.watch import WatchEvent, bookmark, lifetime
from handlers.owned.selection import matcher
from store import Change, Predicate, Row


def handle(request: ApiRequest, deps: Deps) -> WatchResult:
    """The watch the request asks for, with the same selectors as LIST."""
    options = list_options(request.query, watch=True)
    selected = matcher(request)
    seconds = lifetime(options.timeout_seconds)
    since = resource_version(options.resource_version)
    if since is not None and since > INT64_MAX:  # kube's uint64, beyond any revision we store
        raise too_large_resource_version(since, deps.store.revision())
    kind, namespace = request.kind, request.namespace
    selectors = (options.label_selector, options.field_selector)

    def initial() -> tuple[int, list[WatchEvent]]:
        page = deps.store.list(kind.plural, namespace, match=selected)
        return page.revision, [WatchEvent("ADDED", row.body) for row in page.rows]

    return WatchResult(
        resource=kind.plural,
        key=(kind.plural, namespace, selectors),
        events=functools.partial(_events, namespace, selected or _everything),
        since=since,
        initial=initial,
        bookmark=functools.partial(bookmark, kind.kind, kind.api_version),
        lifetime=seconds,
        bookmarks=options.allow_watch_bookmarks,
    )


def _everything(row: Row) -> bool:
    return True


def _events(namespace: str | None, match: Predicate, change: Change) -> list[WatchEvent]:
    """The events ``change`` makes on a watch of ``namespace`` (None: all) through ``match``."""
    if namespace is not None and change.row.namespace != namespace:
        return []
    if change.type == "DELETED":
        return [WatchEvent("DELETED", change.row.body)] if match(change.row) else []
    now = match(change.row)
    before = change.previous is not None and match(change.previous)
    if now:
        return [WatchEvent("MODIFIED" if before else "ADDED", change.row.body)]
    if before and change.previous is not None:
        return [WatchEvent("DELETED", change.previous.body)]
    return []
