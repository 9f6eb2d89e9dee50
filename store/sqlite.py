"""The embedded store: one SQLite file in WAL mode, safe for many processes and threads.

Writers take ``BEGIN IMMEDIATE`` behind a per-process lock (SQLite's busy handler is a sleep
loop, not a queue, so in-process contention is resolved here); every operation borrows a
connection from a pool that grows to the most operations ever run at once (threads that only
wait, such as parked watches, hold none). The revision counter is a row bumped inside each
write transaction, so revisions commit in order and the change log never has a hole.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson

from store import (
    AlreadyExists,
    Change,
    Conflict,
    Expired,
    NotFound,
    Page,
    Predicate,
    Row,
    encode,
    logged_change,
    paginate,
    with_revision,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (k, v) VALUES ('rev', 0), ('compact_rev', 0);
CREATE TABLE IF NOT EXISTS objects (
    res TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,
    rev INTEGER NOT NULL, value BLOB NOT NULL,
    labels BLOB NOT NULL, fields BLOB NOT NULL,
    PRIMARY KEY (res, ns, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY, ts REAL NOT NULL,
    res TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,
    type INTEGER NOT NULL, prev_rev INTEGER NOT NULL,
    value BLOB, labels BLOB, fields BLOB,
    old_value BLOB, old_labels BLOB, old_fields BLOB
);
"""

ADDED, MODIFIED, DELETED = 0, 1, 2
_MMAP_BYTES = 1 << 30


class SQLiteStore:
    """:class:`store.Store` on one SQLite database file."""

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        self._path = path
        self._synchronous = synchronous
        self._write_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []  # list.pop/append are atomic
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        with self._borrow() as conn:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            with self._transaction(conn):
                conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")

    # connections and transactions

    @contextmanager
    def _borrow(self) -> Iterator[sqlite3.Connection]:
        """An idle connection (or a new one) for the duration of one operation."""
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = self._open()
        try:
            yield conn
        finally:
            self._idle.append(conn)

    def _open(self) -> sqlite3.Connection:
        # The timeout sets the busy handler before any statement runs.
        conn = sqlite3.connect(
            self._path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        # Reads through a shared mapping: no read() per page, one copy for all threads.
        conn.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _write(self) -> Iterator[tuple[sqlite3.Connection, int]]:
        """A write transaction holding the next revision."""
        with self._write_lock, self._borrow() as conn, self._transaction(conn):
            conn.execute("BEGIN IMMEDIATE")
            (rev,) = conn.execute(
                "UPDATE meta SET v = v + 1 WHERE k = 'rev' RETURNING v"
            ).fetchone()
            yield conn, rev
            conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A short read transaction: every statement in it sees one snapshot."""
        with self._borrow() as conn, self._transaction(conn):
            conn.execute("BEGIN")
            yield conn
            conn.execute("COMMIT")

    # reads

    def revision(self) -> int:
        """The latest committed revision."""
        with self._borrow() as conn:
            (rev,) = conn.execute("SELECT v FROM meta WHERE k = 'rev'").fetchone()
        return int(rev)

    def get(self, resource: str, namespace: str, name: str) -> Row | None:
        """The current object, or None."""
        with self._borrow() as conn:
            found = conn.execute(
                "SELECT rev, value, labels, fields FROM objects "
                "WHERE res = ? AND ns = ? AND name = ?",
                (resource, namespace, name),
            ).fetchone()
        if found is None:
            return None
        rev, value, labels, fields = found
        return Row(namespace, name, rev, with_revision(value, rev), labels, fields)

    def list(
        self,
        resource: str,
        namespace: str | None,
        *,
        revision: int | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
        match: Predicate | None = None,
    ) -> Page:
        """Objects in (namespace, name) order as of ``revision``; see :class:`store.Store`."""
        with self._read() as conn:
            current, compacted = _meta(conn)
            at = current if revision is None else revision
            if at < compacted:
                raise Expired(at, compacted)
            rows, resume = paginate(
                lambda cursor, n: self._select(conn, resource, namespace, at, current, cursor, n),
                after,
                limit,
                match,
            )
            return Page(at, rows, resume)

    def _select(
        self,
        conn: sqlite3.Connection,
        resource: str,
        namespace: str | None,
        at: int,
        current: int,
        cursor: tuple[str, str],
        limit: int | None,
    ) -> builtins.list[Row]:
        """One keyset page of the state at revision ``at``.

        The state at ``at`` is the current objects not changed since, plus, for keys changed
        after ``at``, the value their first later change replaced (the log keeps it)."""
        scope, args = ("AND ns = ?", [namespace]) if namespace is not None else ("", [])
        page = "LIMIT ?" if limit is not None else ""
        tail = [limit] if limit is not None else []
        ns_cursor, name_cursor = cursor
        if at >= current:
            query = (
                f"SELECT ns, name, rev, value, labels, fields FROM objects WHERE res = ? {scope} "
                f"AND (ns, name) > (?, ?) ORDER BY ns, name {page}"
            )
            params: list[Any] = [resource, *args, ns_cursor, name_cursor, *tail]
        else:
            query = (
                "SELECT ns, name, rev, value, labels, fields FROM ("
                f"SELECT ns, name, rev, value, labels, fields FROM objects WHERE res = ? {scope} "
                "AND rev <= ? AND (ns, name) > (?, ?) "
                "UNION ALL "
                "SELECT ns, name, prev_rev, old_value, old_labels, old_fields FROM log "
                f"WHERE rev > ? AND res = ? {scope} AND prev_rev > 0 AND prev_rev <= ? "
                f"AND (ns, name) > (?, ?)) ORDER BY ns, name {page}"
            )
            params = [
                *(resource, *args, at, ns_cursor, name_cursor),
                *(at, resource, *args, at, ns_cursor, name_cursor),
                *tail,
            ]
        return [
            Row(ns, name, rev, with_revision(value, rev), labels, fields)
            for ns, name, rev, value, labels, fields in conn.execute(query, params)
        ]

    # writes

    def create(
        self,
        resource: str,
        namespace: str,
        name: str,
        obj: Mapping[str, Any],
        fields: Mapping[str, str],
    ) -> Row:
        """Store a new object; raises :class:`AlreadyExists`."""
        value, labels, field_values = _columns(obj, fields)
        try:
            with self._write() as (conn, rev):
                conn.execute(
                    "INSERT INTO objects (res, ns, name, rev, value, labels, fields) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (resource, namespace, name, rev, value, labels, field_values),
                )
                _append(
                    conn, rev, resource, namespace, name, ADDED, 0, (value, labels, field_values)
                )
        except sqlite3.IntegrityError as ex:
            raise AlreadyExists(name) from ex
        return Row(namespace, name, rev, with_revision(value, rev), labels, field_values)

    def update(
        self,
        resource: str,
        namespace: str,
        name: str,
        expected_revision: int,
        obj: Mapping[str, Any],
        fields: Mapping[str, str],
    ) -> Row:
        """Replace the object if still at ``expected_revision``."""
        value, labels, field_values = _columns(obj, fields)
        with self._write() as (conn, rev):
            old = _current(conn, resource, namespace, name, expected_revision)
            conn.execute(
                "UPDATE objects SET rev = ?, value = ?, labels = ?, fields = ? "
                "WHERE res = ? AND ns = ? AND name = ?",
                (rev, value, labels, field_values, resource, namespace, name),
            )
            _append(
                conn,
                rev,
                resource,
                namespace,
                name,
                MODIFIED,
                expected_revision,
                (value, labels, field_values),
                old,
            )
        return Row(namespace, name, rev, with_revision(value, rev), labels, field_values)

    def delete(self, resource: str, namespace: str, name: str, expected_revision: int) -> Row:
        """Remove the object if still at ``expected_revision``; returns its last state."""
        with self._write() as (conn, rev):
            old = _current(conn, resource, namespace, name, expected_revision)
            conn.execute(
                "DELETE FROM objects WHERE res = ? AND ns = ? AND name = ?",
                (resource, namespace, name),
            )
            _append(conn, rev, resource, namespace, name, DELETED, expected_revision, old, old)
        value, labels, field_values = old
        return Row(namespace, name, rev, with_revision(value, rev), labels, field_values)

    def compact(self, *, min_age_seconds: float, min_revisions: int) -> int:
        """Trim the log to what is younger than the age or within the last revisions."""
        with self._write_lock, self._borrow() as conn, self._transaction(conn):
            conn.execute("BEGIN IMMEDIATE")
            current, compacted = _meta(conn)
            (by_age,) = conn.execute(
                "SELECT COALESCE(MAX(rev), 0) FROM log WHERE ts < ?",
                (time.time() - min_age_seconds,),
            ).fetchone()
            target = max(compacted, min(by_age, current - min_revisions))
            if target > compacted:
                conn.execute("DELETE FROM log WHERE rev <= ?", (target,))
                conn.execute("UPDATE meta SET v = ? WHERE k = 'compact_rev'", (target,))
            conn.execute("COMMIT")
        return int(target)

    def changes(
        self, after: int, *, resource: str | None = None, limit: int = 500
    ) -> tuple[builtins.list[Change], int]:
        """Log entries after ``after``, oldest first, and the compacted revision."""
        scope, args = ("AND res = ?", [resource]) if resource is not None else ("", [])
        with self._read() as conn:
            _, compacted = _meta(conn)
            rows = conn.execute(
                "SELECT rev, res, ns, name, type, value, labels, fields, "
                "old_value, old_labels, old_fields, prev_rev "
                f"FROM log WHERE rev > ? {scope} ORDER BY rev LIMIT ?",
                [after, *args, limit],
            ).fetchall()
        out = [
            logged_change(rev, res, ns, name, kind, (value, labels, fields), (old, ol, of))
            for rev, res, ns, name, kind, value, labels, fields, old, ol, of, _ in rows
        ]
        return out, compacted

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._idle.clear()


def _meta(conn: sqlite3.Connection) -> tuple[int, int]:
    values = dict(conn.execute("SELECT k, v FROM meta").fetchall())
    return int(values["rev"]), int(values["compact_rev"])


def _columns(obj: Mapping[str, Any], fields: Mapping[str, str]) -> tuple[bytes, bytes, bytes]:
    labels = obj["metadata"].get("labels") or {}
    return encode(obj), orjson.dumps(labels), orjson.dumps(dict(fields))


def _current(
    conn: sqlite3.Connection, resource: str, namespace: str, name: str, expected: int
) -> tuple[bytes, bytes, bytes]:
    found = conn.execute(
        "SELECT rev, value, labels, fields FROM objects WHERE res = ? AND ns = ? AND name = ?",
        (resource, namespace, name),
    ).fetchone()
    if found is None:
        raise NotFound(name)
    if found[0] != expected:
        raise Conflict(name)
    return found[1], found[2], found[3]


def _append(
    conn: sqlite3.Connection,
    rev: int,
    resource: str,
    namespace: str,
    name: str,
    kind: int,
    prev_rev: int,
    new: tuple[bytes, bytes, bytes],
    old: tuple[bytes, bytes, bytes] | tuple[None, None, None] = (None, None, None),
) -> None:
    conn.execute(
        "INSERT INTO log (rev, ts, res, ns, name, type, prev_rev, value, labels, fields, "
        "old_value, old_labels, old_fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (rev, time.time(), resource, namespace, name, kind, prev_rev, *new, *old),
    )
