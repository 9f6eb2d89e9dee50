"""What the proxy hands a verb handler and what the handler hands back.

A handler is ``handle(request, deps) -> Result``: a pure function of the request and the
dependencies the proxy owns (store, cluster client, caches). It keeps no state of its own,
so any thread, process or pod can serve any request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from handlers.api import params
from handlers.api.admission import NO_ADMISSION, Admission
from handlers.api.kind import Kind
from handlers.api.users import Authorize, User, allowed
from handlers.api.watch import WatchEvent
from store import Change, Store

if TYPE_CHECKING:
    from k8s.upstream import Upstream  # not at run time: the cluster client imports requests


NO_OPTIONS = params.NO_OPTIONS


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One request in Kubernetes terms."""

    kind: Kind
    verb: str
    namespace: str | None
    name: str | None
    query: Mapping[str, str]
    body: Any = None
    user: User | None = None
    subresource: str | None = None
    content_type: str = ""
    authorize: Authorize = allowed
    options: params.WriteOptions = NO_OPTIONS
    """A write's dryRun, fieldManager and fieldValidation, parsed and validated once."""
    user_agent: str = ""
    """Names the manager of a write that gives no ``fieldManager``."""
    annotate: Callable[[str, str], None] = lambda key, value: None
    """Records an audit annotation (``key``, ``value``) in the request's log line."""
    deadline: float | None = None
    """When the answer is due (``time.monotonic()``): calls made for the request (admission
    webhooks) end by then."""
    plain: bool = False
    """The answer goes out as plain text (a resource's ``plain`` form): no list metadata, so
    no continue token can tell that more follow."""

    def param(self, key: str, default: str = "") -> str:
        """A query parameter's first value."""
        return self.query.get(key, default)

    def flag(self, key: str) -> bool:
        """A boolean query parameter, read as kube reads it."""
        return params.flag(self.query, key)


@dataclass(frozen=True, slots=True)
class ObjectResult:
    """One object as JSON bytes, with the HTTP status to answer."""

    body: bytes
    status: int = 200
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ListResult:
    """A page of objects as JSON bytes, consistent at ``revision`` (the cluster's own
    resourceVersion, opaque, for kinds read from the cluster)."""

    revision: int | str
    items: list[bytes]
    continue_token: str = ""
    remaining: int | None = None  # remainingItemCount, when known


@dataclass(frozen=True, slots=True)
class WatchResult:
    """A watch of a kind stored here. The fan-out that carries it owns its cursor, deadline and
    expiry; what the handler gives is pure: which log to follow and what each change sends."""

    resource: str
    key: Hashable
    """Watches with equal keys get equal events from every change: computed once for all."""
    events: Callable[[Change], list[WatchEvent]]
    """The events one change makes on this watch (none, one, or a selector's transition)."""
    since: int | None
    """Replay the log after this revision; None: start from :attr:`initial`."""
    initial: Callable[[], tuple[int, Iterator[WatchEvent]]]
    """The revision the starting state is read at, and its events, read lazily (page by page,
    never the whole state at once): ADDED for each object, then what the watch asked to end
    them with. An ERROR among them ends the watch."""
    bookmark: Callable[[int], WatchEvent]
    lifetime: float
    bookmarks: bool = False


@dataclass(frozen=True, slots=True)
class RelayResult:
    """A watch relayed from elsewhere (the cluster) by the request's own thread: ``events``
    ends by itself (deadline, shutdown, the source ending) or is closed when the client leaves."""

    events: Generator[WatchEvent, None, None]


Result = ObjectResult | ListResult | WatchResult | RelayResult


@dataclass(frozen=True, slots=True)
class Deps:
    """The dependencies the proxy gives handlers: the store, the cluster as handlers read it
    (None when no cluster is configured), the process's shutdown flag, a setting, and the
    admission chain."""

    store: Store
    upstream: Upstream | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    managed_fields: bool = True
    """Keep managedFields (off only to measure their cost: apply then merges untracked)."""
    admission: Admission = NO_ADMISSION
    """The validating admission chain every write passes before it is stored."""


Handler = Callable[[ApiRequest, Deps], Result]
