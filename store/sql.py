"""What both SQL stores share: the statements, differing only in placeholders, and turning
result rows into Rows.

The reads are written here once, with SQLite's ``?``; :class:`Statements` builds every variant
of them for one placeholder style when a store module is imported, so a call only picks a
ready string and lists its parameters. :class:`SQLStore` is the base of
:class:`store.sqlite.SQLiteStore` and :class:`store.postgres.PostgresStore`: it implements
``revision``, ``get`` and ``changes`` on two primitives each engine provides (one statement,
several statements on one snapshot). Also here: the columns an object is stored as
(:func:`columns`), page results to :class:`store.Row` (:func:`merged`), and the counters of
the ``meta`` table (:func:`counters`, :func:`read_at`).
"""

from __future__ import annotations

import heapq
import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import orjson

from store import (
    Change,
    Expired,
    Row,
    Stats,
    Term,
    encode,
    fulltext,
    logged_change,
    search,
    stored_row,
)

Query = tuple[str, Sequence[Any]]

_GET = "SELECT rev, value, labels, fields FROM objects WHERE res = ? AND ns = ? AND name = ?"
_REVISION = "SELECT v FROM meta WHERE k = 'rev'"
_META = "SELECT k, v FROM meta"
_COUNTS = "SELECT res, count(*) FROM objects GROUP BY res"
_ROW = "ns, name, rev, value, labels, fields"  # in the order stored_row takes them
_ROW_OF_O = ", ".join(f"o.{column}" for column in _ROW.split(", "))


def _pages(scoped: bool, limit: str) -> tuple[str, str, str]:
    """The statements of a keyset page: of the current objects; and, for the state at an older
    revision ``at``, of the current objects not changed since, and of the log's entries for
    keys changed after ``at``, each with the value its first later change replaced.

    Each walks its index in key order and its LIMIT stops it, so a page costs what it returns,
    not what follows it; the two halves of an older state are merged in Python (PostgreSQL
    plans a UNION of them as a sort of everything after the cursor). Within a namespace the
    key is the name alone: ``(ns, name) > (?, ?)`` beside ``ns = ?`` makes SQLite sort the
    rest of the namespace."""
    after = "ns = ? AND name > ?" if scoped else "(ns, name) > (?, ?)"
    order = f"ORDER BY ns, name {limit}"
    objects = f"SELECT {_ROW} FROM objects WHERE res = ? AND {after}"
    log = (
        "SELECT ns, name, prev_rev, old_value, old_labels, old_fields FROM log "
        f"WHERE res = ? AND {after} AND rev > ? AND prev_rev > 0 AND prev_rev <= ?"
    )
    return f"{objects} {order}", f"{objects} AND rev <= ? {order}", f"{log} {order}"


def _narrowed_page(scoped: bool, limit: str, values: int, historical: bool) -> str:
    """:func:`_pages`' objects statement, reading only objects holding a term
    (:class:`store.Term`) with one of ``values`` values: the terms index walked in key order
    for one value (LIMIT stops it); for several, their entries are sorted, which costs what
    matches, not what is stored. The index holds current terms, which are also those of the
    objects unchanged since an older revision (``historical``: ``o.rev <= ?``)."""
    after = "t.ns = ? AND t.name > ?" if scoped else "(t.ns, t.name) > (?, ?)"
    value = "t.value = ?" if values == 1 else f"t.value IN ({', '.join('?' * values)})"
    unchanged = "AND o.rev <= ? " if historical else ""
    return (
        f"SELECT {_ROW_OF_O} FROM terms t JOIN objects o "
        "ON o.res = t.res AND o.ns = t.ns AND o.name = t.name "
        f"WHERE t.res = ? AND t.source = ? AND t.key = ? AND {value} AND {after} {unchanged}"
        f"ORDER BY t.ns, t.name {limit}"
    )


_OF_ONE_RESOURCE = "AND l.res || '' = ?"
"""An expression, not the column, so that no index on ``res`` is used: the log is walked in
revision order from the start and LIMIT stops it (SQLite would otherwise read all of the
resource's entries through ``log_key`` and sort them)."""


def _changes(scope: str) -> str:
    """Log entries in revision order, each with what it made and what it replaced.

    An entry keeps only what its change replaced (a creation replaced nothing); what it made
    is what the key's next change replaced or, when none came yet, the object at that
    revision (a deletion made nothing: :func:`store.logged_change` uses what it removed). The
    next change is never compacted before the entry, so no body is stored twice and
    compaction carries nothing over. Each column costs an index seek or two: the key's next
    change by ``log_key``, else the object by its key. They are scalar subqueries because
    PostgreSQL plans a join of the next changes as a hash of the whole log."""
    made = ", ".join(
        f"COALESCE(l.{column}, (SELECT n.old_{column} FROM log n WHERE n.res = l.res "
        "AND n.ns = l.ns AND n.name = l.name AND n.rev > l.rev ORDER BY n.rev LIMIT 1), "
        f"(SELECT o.{column} FROM objects o WHERE o.res = l.res AND o.ns = l.ns "
        "AND o.name = l.name AND o.rev = l.rev))"
        for column in ("value", "labels", "fields")
    )
    return (
        f"SELECT l.rev, l.res, l.ns, l.name, l.type, {made}, "
        "l.old_value, l.old_labels, l.old_fields "
        f"FROM log l WHERE l.rev > ? {scope} ORDER BY l.rev LIMIT ?"
    )


class Statements:
    """The shared statements for one placeholder style: ``?`` (sqlite3) or ``%s`` (psycopg).

    ``get`` reads ``rev, value, labels, fields`` of (res, ns, name); ``revision`` the latest
    revision; ``meta`` the counters (for :func:`counters`); :meth:`page` and :meth:`changes`
    pick the variant their arguments need."""

    __slots__ = ("_changes", "_pages", "_placeholder", "get", "meta", "revision")

    def __init__(self, placeholder: str) -> None:
        self._placeholder = placeholder
        bind = self._bind

        self.get = bind(_GET)
        self.revision = _REVISION
        self.meta = _META
        self._pages = {
            (scoped, limited): tuple(map(bind, _pages(scoped, "LIMIT ?" if limited else "")))
            for scoped, limited in itertools.product((False, True), repeat=2)
        }
        self._changes = {
            scoped: bind(_changes(_OF_ONE_RESOURCE if scoped else "")) for scoped in (False, True)
        }

    def _bind(self, text: str) -> str:
        return text.replace("?", self._placeholder)

    def page(
        self,
        resource: str,
        namespace: str | None,
        at: int | None,
        cursor: tuple[str, str],
        limit: int | None,
        narrow: Term | None = None,
    ) -> tuple[Query, ...]:
        """The statements of one keyset page after ``cursor`` (``limit`` rows, all when None)
        of the current objects (``at`` None) or of the state at revision ``at``, for
        :func:`merged`. ``narrow`` reads only the objects holding that term (and, for an
        older state, the log's entries, which the caller's filter then sorts out)."""
        key = cursor if namespace is None else (namespace, _name_after(namespace, cursor))
        tail = () if limit is None else (limit,)
        current, objects, log = self._pages[namespace is not None, limit is not None]
        unchanged: tuple[Any, ...] = () if at is None else (at,)
        if narrow is None:
            first = (current if at is None else objects, (resource, *key, *unchanged, *tail))
        else:
            query = _narrowed_page(
                namespace is not None,
                "LIMIT ?" if limit is not None else "",
                len(narrow.values),
                historical=at is not None,
            )
            term = (narrow.source, narrow.key, *narrow.values)
            first = (self._bind(query), (resource, *term, *key, *unchanged, *tail))
        if at is None:
            return (first,)
        return first, (log, (resource, *key, at, at, *tail))

    def changes(self, after: int, resource: str | None, limit: int) -> Query:
        """Up to ``limit`` log entries after revision ``after``, of one resource or all."""
        if resource is None:
            return self._changes[False], (after, limit)
        return self._changes[True], (after, resource, limit)


def _name_after(namespace: str, cursor: tuple[str, str]) -> str:
    """The name a page of ``namespace`` starts after: the cursor's, or "" (before every name)
    when the cursor comes before the namespace (a first page starts after ("", ""))."""
    cursor_namespace, name = cursor
    if cursor_namespace > namespace:
        return "\U0010ffff"  # after every name: the namespace is done
    return name if cursor_namespace == namespace else ""


class SQLStore(ABC):
    """The part of :class:`store.Store` both SQL stores implement alike, on their connections."""

    _sql: ClassVar[Statements]
    _fulltext: ClassVar[fulltext.Compiler]

    @abstractmethod
    def _one(self, query: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """The first row of one statement, or None."""

    @abstractmethod
    def _snapshot(self, *queries: Query) -> list[list[tuple[Any, ...]]]:
        """The rows of each query, all read from one snapshot."""

    def revision(self) -> int:
        """The latest committed revision."""
        found = self._one(self._sql.revision, ())
        assert found is not None
        return int(found[0])

    def get(self, resource: str, namespace: str, name: str) -> Row | None:
        """The current object, or None."""
        found = self._one(self._sql.get, (resource, namespace, name))
        if found is None:
            return None
        rev, value, labels, fields = found
        return stored_row(namespace, name, rev, value, labels, fields)

    def search(
        self, query: search.Query, limit: int, after: tuple[float, str, str, str] | None = None
    ) -> list[fulltext.Hit]:
        """The documents matching ``query``, best first; see :class:`store.Store`."""
        statement = self._fulltext.search(query, limit, after)
        (rows,) = self._snapshot((statement.sql, statement.params))
        return fulltext.hits(rows, query)

    def changes(
        self, after: int, *, resource: str | None = None, limit: int = 500
    ) -> tuple[list[Change], int]:
        """Log entries after ``after``, oldest first, and the compacted revision."""
        meta, found = self._snapshot(
            (self._sql.meta, ()), self._sql.changes(after, resource, limit)
        )
        out = [
            logged_change(rev, res, ns, name, kind, (value, labels, fields), (old, ol, of))
            for rev, res, ns, name, kind, value, labels, fields, old, ol, of in found
        ]
        return out, counters(meta)[1]

    def stats(self) -> Stats:
        """The revisions and the objects per resource; see :class:`store.Store`."""
        meta, counts = self._snapshot((self._sql.meta, ()), (_COUNTS, ()))
        revision, compacted = counters(meta)
        return Stats(revision, compacted, {str(res): int(n) for res, n in counts})


def columns(obj: Mapping[str, Any], fields: Mapping[str, str]) -> tuple[bytes, bytes, bytes]:
    """The stored columns of ``obj``: value (:func:`store.encode`), labels and fields JSON."""
    labels = obj["metadata"].get("labels") or {}
    return encode(obj), orjson.dumps(labels), orjson.dumps(dict(fields))


def merged(results: Sequence[Iterable[Sequence[Any]]], limit: int | None) -> list[Row]:
    """The first ``limit`` Rows (all when None) of the results of :meth:`Statements.page`,
    each in key order, merged in key order."""
    rows = results[0] if len(results) == 1 else heapq.merge(*results, key=_key)
    return list(itertools.starmap(stored_row, itertools.islice(rows, limit)))


def _key(row: Sequence[Any]) -> tuple[str, str]:
    return row[0], row[1]


def counters(meta: Iterable[tuple[Any, ...]]) -> tuple[int, int]:
    """The latest and the compacted revision, from the rows of :attr:`Statements.meta`."""
    values = dict(meta)
    return int(values["rev"]), int(values["compact_rev"])


def read_at(meta: Iterable[tuple[Any, ...]], revision: int | None) -> tuple[int, int]:
    """The revision a read is at (``revision``, the latest when None) and the latest, from
    the rows of :attr:`Statements.meta`; raises :class:`store.Expired` when compacted away."""
    current, compacted = counters(meta)
    at = current if revision is None else revision
    if at < compacted:
        raise Expired(at, compacted)
    return at, current
