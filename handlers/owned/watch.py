"""WATCH of a stored kind (R6): what a watch sends, not how it is carried.

The fan-out that carries the watch owns its cursor, deadline and expiry (``proxy/fanout.py``);
this gives it the log to follow, the starting state (streamed: :mod:`handlers.owned.initial`),
and a pure function from a change to its events. A label or field selector turns an object
entering it into ADDED and one leaving it into DELETED, as kube's watch cache does.
"""

from __future__ import annotations

import functools

from handlers.api.contract import ApiRequest, Deps, WatchResult
from handlers.api.errors import too_large_resource_version
from handlers.api.params import INT64_MAX, list_options, resource_version
from handlers.api.watch import WatchEvent, bookmark, lifetime
from handlers.owned.initial import starting
from handlers.owned.selection import matcher, narrowing
from store import Change, Predicate, Row


def handle(request: ApiRequest, deps: Deps) -> WatchResult:
    """The watch the request asks for, with the same selectors as LIST.

    Where it starts, as kube's watch cache decides it: ``sendInitialEvents=true`` (a
    watch-list) sends the state now, at least as new as the resourceVersion asked for, then,
    when bookmarks are allowed, the BOOKMARK ending the initial events; ``false`` watches from
    the resourceVersion, or from now for ``""`` and ``"0"``. Without it (the legacy watch),
    ``""`` and ``"0"`` send the state now and a revision watches from it."""
    options = list_options(request.query, watch=True)
    selected = matcher(request)
    seconds = lifetime(options.timeout_seconds)
    wanted = resource_version(options.resource_version)
    if wanted is not None and wanted > INT64_MAX:  # kube's uint64, beyond any revision we store
        raise too_large_resource_version(wanted, deps.store.revision())
    kind, namespace = request.kind, request.namespace
    selectors = (options.label_selector, options.field_selector)
    send = options.send_initial_events
    marker = functools.partial(bookmark, kind.kind, kind.api_version)
    since = None if send else wanted
    if send is False and since is None:
        since = deps.store.revision()
    end = functools.partial(marker, initial_events_end=True)
    return WatchResult(
        resource=kind.plural,
        key=(kind.plural, namespace, selectors),
        events=functools.partial(_events, namespace, selected or _everything),
        since=since,
        initial=functools.partial(
            starting,
            deps.store,
            kind.plural,
            namespace,
            match=selected,
            narrow=narrowing(request) if selected else None,
            at_least=wanted if send else None,
            end=end if send and options.allow_watch_bookmarks else None,
        ),
        bookmark=marker,
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
