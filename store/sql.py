"""What both SQL stores share: the statements, differing only in placeholders, and turning
result rows into Rows.

The reads are written here once, with SQLite's ``?``; :class:`Statements` builds every variant
of them for one placeholder style when a store module is imported, so a call only picks a
ready string and lists its parameters. :class:`SQLStore` is the base of
:class:`store.sqlite.SQLiteStore` and :class:`store.postgres.PostgresStore`: it implements
``revision``, ``get`` and ``changes`` on two primitives each engine provides (one statement,
several statements on one snapshot). Also here: the columns an object is stored as
(:func:`columns`), result rows to :class:`store.Row` (:func:`rows_of`), and the counters of
the ``meta`` table (:func:`counters`, :func:`read_at`).
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import orjson

from store import Change, Expired, Row, encode, logged_change, stored_row

Query = tuple[str, Sequence[Any]]

_GET = "SELECT rev, value, labels, fields FROM objects WHERE res = ? AND ns = ? AND name = ?"
_REVISION = "SELECT v FROM meta WHERE k = 'rev'"
_META = "SELECT k, v FROM meta"
_ROW = "ns, name, rev, value, labels, fields"  # in the order stored_row takes them


def _page(historical: bool, scope: str, limit: str) -> str:
    """A keyset page of the current objects, or (``historical``) of the state at revision
    ``at``: the current objects not changed since, plus, for keys changed after ``at``, the
    value their first later change replaced (the log keeps it)."""
    objects = f"SELECT {_ROW} FROM objects WHERE res = ? {scope} "
    if not historical:
        return f"{objects}AND (ns, name) > (?, ?) ORDER BY ns, name {limit}"
    return (
        f"{objects}AND rev <= ? AND (ns, name) > (?, ?) "
        "UNION ALL "
        "SELECT ns, name, prev_rev, old_value, old_labels, old_fields FROM log "
        f"WHERE rev > ? AND res = ? {scope} AND prev_rev > 0 AND prev_rev <= ? "
        f"AND (ns, name) > (?, ?) ORDER BY ns, name {limit}"
    )


def _changes(scope: str) -> str:
    return (
        "SELECT rev, res, ns, name, type, value, labels, fields, "
        "old_value, old_labels, old_fields "
        f"FROM log WHERE rev > ? {scope} ORDER BY rev LIMIT ?"
    )


class Statements:
    """The shared statements for one placeholder style: ``?`` (sqlite3) or ``%s`` (psycopg).

    ``get`` reads ``rev, value, labels, fields`` of (res, ns, name); ``revision`` the latest
    revision; ``meta`` the counters (for :func:`counters`); :meth:`page` and :meth:`changes`
    pick the variant their arguments need."""

    __slots__ = ("_changes", "_pages", "get", "meta", "revision")

    def __init__(self, placeholder: str) -> None:
        def bind(text: str) -> str:
            return text.replace("?", placeholder)

        self.get = bind(_GET)
        self.revision = _REVISION
        self.meta = _META
        self._pages = {
            (historical, scoped, limited): bind(
                _page(historical, "AND ns = ?" if scoped else "", "LIMIT ?" if limited else "")
            )
            for historical, scoped, limited in itertools.product((False, True), repeat=3)
        }
        self._changes = {
            scoped: bind(_changes("AND res = ?" if scoped else "")) for scoped in (False, True)
        }

    def page(
        self,
        resource: str,
        namespace: str | None,
        at: int | None,
        cursor: tuple[str, str],
        limit: int | None,
    ) -> Query:
        """One keyset page after ``cursor`` (``limit`` rows, all when None) of the current
        objects (``at`` None) or of the state at revision ``at``; rows for :func:`rows_of`."""
        scope = () if namespace is None else (namespace,)
        tail = () if limit is None else (limit,)
        query = self._pages[at is not None, namespace is not None, limit is not None]
        if at is None:
            return query, (resource, *scope, *cursor, *tail)
        return query, (resource, *scope, at, *cursor, at, resource, *scope, at, *cursor, *tail)

    def changes(self, after: int, resource: str | None, limit: int) -> Query:
        """Up to ``limit`` log entries after revision ``after``, of one resource or all."""
        if resource is None:
            return self._changes[False], (after, limit)
        return self._changes[True], (after, resource, limit)


class SQLStore(ABC):
    """The part of :class:`store.Store` both SQL stores implement alike, on their connections."""

    _sql: ClassVar[Statements]

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


def columns(obj: Mapping[str, Any], fields: Mapping[str, str]) -> tuple[bytes, bytes, bytes]:
    """The stored columns of ``obj``: value (:func:`store.encode`), labels and fields JSON."""
    labels = obj["metadata"].get("labels") or {}
    return encode(obj), orjson.dumps(labels), orjson.dumps(dict(fields))


def rows_of(found: Iterable[Sequence[Any]]) -> list[Row]:
    """The Rows of a :meth:`Statements.page` result."""
    return list(itertools.starmap(stored_row, found))


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
