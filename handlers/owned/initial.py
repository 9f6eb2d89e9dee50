"""The starting state of a watch of a stored kind, streamed from the store.

A watch that starts with the state (the legacy watch without a resourceVersion, and a
watch-list's ``sendInitialEvents=true``) reads it page by page at one fixed revision, so that
a hundred thousand objects cost one page of memory, not a list of them all. The first page
fixes the revision; the fan-out holds live changes from before the first read and drops
those at or below it, so nothing is missed or sent twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson

from handlers.api.errors import too_large_resource_version
from handlers.api.watch import WatchEvent, too_old
from store import Expired, Page, Predicate, Store, Term

PAGE = 500
"""Objects read per store query while the starting state streams."""


def starting(
    store: Store,
    resource: str,
    namespace: str | None,
    *,
    match: Predicate | None,
    narrow: Term | None,
    at_least: int | None,
    end: Callable[[int], WatchEvent] | None,
) -> tuple[int, Iterator[WatchEvent]]:
    """The revision of the state now, and its events: ADDED for each object ``match`` selects,
    then ``end(revision)`` when given (the initial-events-end BOOKMARK).

    ``at_least`` is a resourceVersion the state must not be older than: when the store has
    not reached it, the watch gets kube's 504 "Too large resource version" as its ERROR event
    (the store is the source of truth, so waiting would not bring it)."""
    first = store.list(resource, namespace, limit=PAGE, match=match, narrow=narrow)
    if at_least is not None and at_least > first.revision:
        status = too_large_resource_version(at_least, first.revision).status()
        return first.revision, iter([WatchEvent("ERROR", orjson.dumps(status))])

    def following(after: tuple[str, str]) -> Page:
        return store.list(
            resource,
            namespace,
            revision=first.revision,
            after=after,
            limit=PAGE,
            match=match,
            narrow=narrow,
        )

    return first.revision, _events(first, following, end)


def _events(
    page: Page,
    following: Callable[[tuple[str, str]], Page],
    end: Callable[[int], WatchEvent] | None,
) -> Iterator[WatchEvent]:
    revision = page.revision
    while True:
        for row in page.rows:
            yield WatchEvent("ADDED", row.body)
        if page.resume_after is None:
            break
        try:
            page = following(page.resume_after)
        except Expired as ex:  # compacted while it streamed: the client starts again
            yield too_old(ex.requested, ex.oldest)
            return
    if end is not None:
        yield end(revision)
