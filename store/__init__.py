"""Persistence for the kinds this server owns.

The store is a revisioned key-value log with Kubernetes semantics: one monotonically
increasing revision shared by every kind (it is the ``resourceVersion``), a table of current
objects so that get and list cost what they return, and an append-only change log written
in the same transaction as every change (watches read it; old list pages are rebuilt from it).

Objects are kept as JSON bytes with ``metadata`` first and no ``resourceVersion``; readers
splice the revision in (:func:`with_revision`, :func:`stored_row`) so a list is assembled
without parsing.

Here lives what handlers and both engines use: the :class:`Store` protocol, its errors, the
stored form (:func:`encode`, :func:`with_revision`), the results (:class:`Row`, :class:`Page`,
:class:`Change`), the change types (:data:`EVENT_TYPES` and their codes in the log), keyset
paging (:func:`paginate`) and log rows to changes (:func:`logged_change`). The engines are
:mod:`store.sqlite` and :mod:`store.postgres`; :mod:`store.sql` holds what they share.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import orjson

from store.fulltext import Document, Hit
from store.search import Query

_META_PREFIX = b'{"metadata":{'


COMPACT_BATCH = 2000
"""The most log rows one compaction transaction deletes."""


class Compacted(NamedTuple):
    """What one :meth:`Store.compact` did: the log's oldest revision is now ``revision``;
    ``removed`` entries were deleted (the log has no holes: one per revision)."""

    revision: int
    removed: int


class Stats(NamedTuple):
    """What the metrics report of a store: the latest and the compacted revision, and how many
    objects each resource has (kube's ``apiserver_resource_objects``)."""

    revision: int
    compacted: int
    objects: dict[str, int]


class New(NamedTuple):
    """An object to create: where, what, its selectable fields' values and what the search
    index keeps of it (None: not searchable)."""

    namespace: str
    name: str
    obj: Mapping[str, Any]
    fields: Mapping[str, str]
    document: Document | None = None


class StoreError(Exception):
    """Base of the store's errors; handlers turn them into ``metav1.Status``."""


class AlreadyExists(StoreError):
    """A create found the key taken."""


class NotFound(StoreError):
    """The key does not exist."""


class Conflict(StoreError):
    """The object changed since the revision the caller expected."""


class Expired(StoreError):
    """The requested revision has been compacted away."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"revision {requested} is older than the oldest kept ({oldest})")
        self.requested = requested
        self.oldest = oldest


def encode(obj: Mapping[str, Any]) -> bytes:
    """Serialize ``obj`` in the stored form: ``metadata`` first, without ``resourceVersion``."""
    metadata = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    if not metadata:
        raise ValueError("stored objects need metadata besides resourceVersion")
    return orjson.dumps({"metadata": metadata, **{k: v for k, v in obj.items() if k != "metadata"}})


def with_revision(stored: bytes, revision: int) -> bytes:
    """Return the stored bytes as served: ``metadata.resourceVersion`` spliced in first."""
    return b'{"metadata":{"resourceVersion":"%d",%s' % (revision, stored[len(_META_PREFIX) :])


@dataclass(frozen=True, slots=True)
class Row:
    """One object as the store returns it."""

    namespace: str
    name: str
    revision: int
    body: bytes
    labels_json: bytes = b"{}"
    fields_json: bytes = b"{}"
    _labels: dict[str, str] | None = field(default=None, compare=False, repr=False)

    def labels(self) -> dict[str, str]:
        """The object's labels, parsed from the small column (not from the body)."""
        parsed: dict[str, str] = orjson.loads(self.labels_json)
        return parsed

    def fields(self) -> dict[str, str]:
        """The object's selectable field values, as the handler recorded them at write time."""
        parsed: dict[str, str] = orjson.loads(self.fields_json)
        return parsed


def stored_row(
    namespace: str,
    name: str,
    revision: int,
    value: bytes,
    labels_json: bytes = b"{}",
    fields_json: bytes = b"{}",
) -> Row:
    """The row of a stored ``value`` (see :func:`encode`), served at ``revision``."""
    return Row(namespace, name, revision, with_revision(value, revision), labels_json, fields_json)


@dataclass(frozen=True, slots=True)
class Page:
    """A list result, consistent at ``revision``; ``resume_after`` is set when more may follow."""

    revision: int
    rows: list[Row]
    resume_after: tuple[str, str] | None


Predicate = Callable[[Row], bool]

LABEL, FIELD = "l", "f"
"""Where a :class:`Term`'s key is: the object's labels, or its selectable fields."""


@dataclass(frozen=True, slots=True)
class Term:
    """The part of a selector an index answers: only objects whose label (``source``
    :data:`LABEL`) or selectable field (:data:`FIELD`) ``key`` holds one of ``values`` can
    match. A list given one walks that index, in key order, instead of every object; the whole
    selector (``match``) still has the last word on each row."""

    source: str
    key: str
    values: tuple[str, ...]


EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED")
"""The change types, indexed by the code the change log stores (its ``type`` column)."""
ADDED, MODIFIED, DELETED = range(len(EVENT_TYPES))
"""The codes (0, 1, 2): ``EVENT_TYPES[ADDED] == "ADDED"``. The PL/pgSQL writes them as literals."""


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change log, as watches need it.

    ``row`` is the new state (for DELETED: the last state), served at the change's revision;
    ``previous`` is the state it replaced (None for ADDED), also at the change's revision, so
    a watch whose selector the object leaves can send it as DELETED, as kube does."""

    type: str
    resource: str
    row: Row
    previous: Row | None

    @property
    def revision(self) -> int:
        return self.row.revision


BATCH = 500
"""Rows read per query when a filter may drop some of them."""


def paginate(
    read: Callable[[tuple[str, str], int | None], builtins.list[Row]],
    after: tuple[str, str] | None,
    limit: int | None,
    match: Predicate | None,
) -> tuple[builtins.list[Row], tuple[str, str] | None]:
    """Assemble a page from keyset batches: ``read(cursor, n)`` gives the next ``n`` rows
    (all when None) after ``cursor``. Returns the rows and the key to resume after, if any."""
    rows: builtins.list[Row] = []
    cursor = after or ("", "")
    fetch = None if limit is None else limit + 1 if match is None else max(limit + 1, BATCH)
    while True:
        batch = read(cursor, fetch)
        for row in batch:
            if limit is not None and len(rows) == limit:
                return rows, (rows[-1].namespace, rows[-1].name)
            if match is None or match(row):
                rows.append(row)
        if fetch is None or len(batch) < fetch:
            return rows, None
        cursor = (batch[-1].namespace, batch[-1].name)


def logged_change(
    revision: int,
    resource: str,
    namespace: str,
    name: str,
    kind: int,
    new: tuple[bytes | None, bytes | None, bytes | None],
    old: tuple[bytes | None, bytes | None, bytes | None],
) -> Change:
    """A change from a log row: (value, labels, fields) after and before, revision spliced in;
    a deletion's row is what it removed (it made nothing)."""
    previous = None
    if old[0] is not None:
        previous = stored_row(namespace, name, revision, old[0], old[1] or b"{}", old[2] or b"{}")
    if new[0] is None:
        assert kind == DELETED and previous is not None, (revision, kind)
        return Change(EVENT_TYPES[kind], resource, previous, previous)
    row = stored_row(namespace, name, revision, new[0], new[1] or b"{}", new[2] or b"{}")
    return Change(EVENT_TYPES[kind], resource, row, previous)


class Leadership(Protocol):
    """A role taken by one process of all those sharing a store (see :meth:`Store.lead`)."""

    def held(self) -> bool:
        """Whether the role is still ours (a lost database connection loses it)."""
        ...

    def release(self) -> None:
        """Give the role up: another process may take it."""
        ...


class Store(Protocol):
    """What handlers need from persistence; SQLite and PostgreSQL implement it."""

    def revision(self) -> int:
        """The latest committed revision."""
        ...

    def get(self, resource: str, namespace: str, name: str) -> Row | None:
        """The current object, or None."""
        ...

    def create(
        self,
        resource: str,
        namespace: str,
        name: str,
        obj: Mapping[str, Any],
        fields: Mapping[str, str],
        document: Document | None = None,
    ) -> Row:
        """Store a new object under a new revision, and ``document`` in the search index;
        raises :class:`AlreadyExists`."""
        ...

    def load(self, resource: str, objects: Sequence[New]) -> int:
        """Create many objects in one transaction, each under its own revision in the given
        order, as :meth:`create` would (log entries and index terms included): the fast path
        for filling a store (a migration, a benchmark). All or nothing: raises
        :class:`AlreadyExists` when one of them exists. Returns the last revision."""
        ...

    def update(
        self,
        resource: str,
        namespace: str,
        name: str,
        expected_revision: int,
        obj: Mapping[str, Any],
        fields: Mapping[str, str],
        document: Document | None = None,
    ) -> Row:
        """Replace the object if it is still at ``expected_revision``, and its search document
        (None: it leaves the index); raises NotFound/Conflict."""
        ...

    def delete(self, resource: str, namespace: str, name: str, expected_revision: int) -> Row:
        """Remove the object (and its search document) if still at ``expected_revision``;
        returns its last state at the deletion's revision. Raises NotFound/Conflict."""
        ...

    def index(self, resource: str, namespace: str, name: str, document: Document | None) -> None:
        """Put (None: remove) the search document of an object kept elsewhere (a cluster
        Task): the index only, no revision, no log entry."""
        ...

    def reindex(self, resource: str, documents: Mapping[tuple[str, str], Document]) -> None:
        """Make the search documents of ``resource`` exactly ``documents`` (keyed by namespace
        and name), in one transaction, writing only what changed: a fresh list of what is kept
        elsewhere replaces what was indexed of it."""
        ...

    def lead(self, role: str) -> Leadership | None:
        """Take ``role`` if no process sharing this store holds it (one cluster Task indexer
        per store); None when another does. It is held until released or the holder ends."""
        ...

    def search(
        self, query: Query, limit: int, after: tuple[float, str, str, str] | None = None
    ) -> builtins.list[Hit]:
        """The documents matching ``query``, best first (then by key), ``limit`` of them after
        the hit keyed ``after`` (rank, resource, namespace, name)."""
        ...

    def list(
        self,
        resource: str,
        namespace: str | None,
        *,
        revision: int | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
        match: Predicate | None = None,
        narrow: Term | None = None,
    ) -> Page:
        """Objects in key order (namespace, name), as of ``revision`` (latest when None), that
        ``match`` selects; ``narrow``, a term every match satisfies, lets the store read only
        the objects that satisfy it (at the latest revision: an older state is filtered).

        Raises :class:`Expired` when ``revision`` is older than the compacted log."""
        ...

    def compact(self, *, min_age_seconds: float, min_revisions: int) -> Compacted:
        """Trim the change log, keeping the given age and count, in transactions of at most
        :data:`COMPACT_BATCH` revisions (a writer never waits behind a whole compaction);
        then give the freed space back when the engine keeps it."""
        ...

    def changes(
        self, after: int, *, resource: str | None = None, limit: int = 500
    ) -> tuple[builtins.list[Change], int]:
        """Log entries after revision ``after`` (of one resource, or all), oldest first, and
        the oldest revision the log can still answer from (requests before it get 410)."""
        ...

    def stats(self) -> Stats:
        """The revisions and the objects per resource, read together (a count of every
        object: the caller decides how often)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
