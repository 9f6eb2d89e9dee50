"""What the proxy hands a verb handler and what the handler hands back.

A handler is ``handle(request, deps) -> Result``: a pure function of the request and the
dependencies the proxy owns (store, cluster client, caches). It keeps no state of its own,
so any thread, process or pod can serve any request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handlers.kinds import Kind
    from handlers.watching import Follower
    from store import Store


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated identity."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


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
    # Raises the 403 Status unless the caller may also do the given verb on what this request
    # addresses: a PATCH that creates (server-side apply) needs ``create`` too, as in kube.
    authorize: Callable[[str], None] = lambda verb: None

    def param(self, key: str, default: str = "") -> str:
        """A query parameter's first value."""
        return self.query.get(key, default)


@dataclass(frozen=True, slots=True)
class ObjectResult:
    """One object as JSON bytes, with the HTTP status to answer."""

    body: bytes
    status: int = 200
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ListResult:
    """A page of objects as JSON bytes, consistent at ``revision``."""

    revision: int
    items: list[bytes]
    continue_token: str = ""


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One event of a watch: its type and its object as JSON bytes."""

    type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class WatchResult:
    """A watch: once ``follower`` is subscribed to the live changes, ``begin()`` gives the
    events to send first (reading the starting state); then the follower picks live ones."""

    follower: Follower
    begin: Callable[[], Iterator[WatchEvent]]


Result = ObjectResult | ListResult | WatchResult


@dataclass(frozen=True, slots=True)
class Deps:
    """The dependencies the proxy gives handlers."""

    store: Store


Handler = Callable[[ApiRequest, Deps], Result]
