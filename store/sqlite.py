"""The embedded store: one SQLite file in WAL mode, safe for many processes and threads.

Writers take ``BEGIN IMMEDIATE`` behind a per-process lock (SQLite's busy handler is a sleep
loop, not a queue, so in-process contention is resolved here); every operation borrows a
connection from a pool that grows to the most operations ever run at once (threads that only
wait, such as parked watches, hold none). The revision counter is a row bumped inside each
write transaction, so revisions commit in order and the change log never has a hole.

Here: :class:`SQLiteStore` with its schema, connection pool, transactions, ``list`` (one read
transaction for all of a page's batches) and the writes. Its reads' statements, and ``get``,
``revision`` and ``changes`` themselves, are shared with PostgreSQL in :mod:`store.sql`.

A get is answered from the objects this process read last while no write has been committed
since, by any process (:mod:`store.generation`): a read as fresh as SQLite's, without a
statement. Only writes through this store are seen so: another program writing the file
would have to publish its revisions too.
"""

from __future__ import annotations

import builtins
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson

from store import (
    ADDED,
    COMPACT_BATCH,
    DELETED,
    FIELD,
    LABEL,
    MODIFIED,
    AlreadyExists,
    Compacted,
    Conflict,
    Leadership,
    New,
    NotFound,
    Page,
    Predicate,
    Row,
    Term,
    fulltext,
    paginate,
    search,
    stored_row,
)
from store.fulltext import Document
from store.generation import Generation
from store.sql import Query, SQLStore, Statements, columns, counters, merged, read_at

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
    type INTEGER NOT NULL, prev_rev INTEGER NOT NULL, -- type: store.ADDED, MODIFIED, DELETED
    -- what the change made: no longer written (store.sql._changes reads it from the next
    -- change of the key or the object); entries logged by older versions still carry it
    value BLOB, labels BLOB, fields BLOB,
    old_value BLOB, old_labels BLOB, old_fields BLOB -- what the change replaced
);
-- historical pages walk the log in key order beside the objects (store.sql._page)
CREATE INDEX IF NOT EXISTS log_key ON log (res, ns, name, rev);
-- each current object's labels and selectable fields (store.Term), kept with every write
CREATE TABLE IF NOT EXISTS terms (
    res TEXT NOT NULL, source TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    ns TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (res, source, key, value, ns, name)
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (k, v) VALUES ('terms', 0);
"""
_TERMS_OF_OBJECTS = f"""
INSERT OR IGNORE INTO terms (res, source, key, value, ns, name)
SELECT o.res, '{LABEL}', j.key, j.value, o.ns, o.name
FROM objects o, json_each(CAST(o.labels AS TEXT)) j
UNION ALL
SELECT o.res, '{FIELD}', j.key, j.value, o.ns, o.name
FROM objects o, json_each(CAST(o.fields AS TEXT)) j
"""
"""The terms of objects stored before the terms index existed, built once when opened."""
_TERMS_OF_ONE = f"""
INSERT INTO terms (res, source, key, value, ns, name)
SELECT ?1, '{LABEL}', key, value, ?2, ?3 FROM json_each(CAST(?4 AS TEXT))
UNION ALL
SELECT ?1, '{FIELD}', key, value, ?2, ?3 FROM json_each(CAST(?5 AS TEXT))
"""
"""The terms of one object (res, ns, name, labels, fields), parsed where they are written:
the JSON never becomes Python objects."""

_INSERT_OBJECT = (
    "INSERT INTO objects (res, ns, name, rev, value, labels, fields) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_LOG = (
    "INSERT INTO log (rev, ts, res, ns, name, type, prev_rev, old_value, old_labels, old_fields) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_DELETE_DOCUMENT = "DELETE FROM documents WHERE res = ? AND ns = ? AND name = ?"
_UPSERT_DOCUMENT = (
    fulltext.SQLITE_INSERT + " ON CONFLICT (res, ns, name) DO UPDATE SET kind = excluded.kind, "
    "generation = excluded.generation, priority = excluded.priority, details = excluded.details "
    "WHERE documents.details IS NOT excluded.details "  # unchanged details: FTS left alone
    "OR documents.generation IS NOT excluded.generation "
    "OR documents.priority IS NOT excluded.priority"
)
_FIRST_YOUNG = "SELECT rev - 1 FROM log WHERE rev > ? AND ts >= ? ORDER BY rev LIMIT 1"
"""The newest revision older than a time (log times grow with revisions), when not the last."""

_PAGES = "SELECT * FROM pragma_freelist_count(), pragma_page_count()"

_SQL = Statements("?")
_MMAP_BYTES = 1 << 30
_WAL_LIMIT_BYTES = 64 << 20
_INCREMENTAL = 2  # PRAGMA auto_vacuum: free pages can be given back by incremental_vacuum
_VACUUM_PAGES = 500  # per write transaction: 2 MB of 4 KB pages
_BUSY_TIMEOUT_MS = 30_000
_IDLE_CHECKPOINT_WAIT_MS = 100
_RECENT_ROWS = 4096  # objects a process keeps for gets (cleared when full)


class SQLiteStore(SQLStore):
    """:class:`store.Store` on one SQLite database file."""

    _sql = _SQL
    _fulltext = fulltext.SQLiteCompiler()

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        self._path = path
        self._synchronous = synchronous
        self._generation = Generation(f"{path}-generation")
        self._recent: dict[tuple[str, str, str], tuple[int, Row]] = {}
        self._write_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []  # list.pop/append are atomic
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._revision_at_compaction = -1
        with self._borrow() as conn:
            if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
                # before the first table, or rewriting a file made before this setting
                conn.execute(f"PRAGMA auto_vacuum={_INCREMENTAL}")
                conn.execute("VACUUM")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            with self._transaction(conn):
                conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + fulltext.SQLITE_SCHEMA)
                if not conn.execute("SELECT v FROM meta WHERE k = 'terms'").fetchone()[0]:
                    conn.execute(_TERMS_OF_OBJECTS)
                    conn.execute("UPDATE meta SET v = 1 WHERE k = 'terms'")
                (revision,) = conn.execute(_SQL.revision).fetchone()
                self._generation.reset(revision)
                conn.execute("COMMIT")

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
            self._path,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        # Reads through a shared mapping: no read() per page, one copy for all threads.
        conn.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
        # A checkpoint every 1,000 pages written; after one, a WAL file left larger than the
        # limit is cut back to it (the WAL otherwise keeps its largest size).
        conn.execute("PRAGMA wal_autocheckpoint=1000")
        conn.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT_BYTES}")
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
    def _write(self, revisions: int = 1) -> Iterator[tuple[sqlite3.Connection, int]]:
        """A write transaction holding the next ``revisions`` revisions, up to the one given."""
        with self._write_lock, self._borrow() as conn, self._transaction(conn):
            conn.execute("BEGIN IMMEDIATE")
            (rev,) = conn.execute(
                "UPDATE meta SET v = v + ? WHERE k = 'rev' RETURNING v", (revisions,)
            ).fetchone()
            yield conn, rev
            self._generation.starting(rev)
            conn.execute("COMMIT")
            self._generation.finished(rev)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A short read transaction: every statement in it sees one snapshot."""
        with self._borrow() as conn, self._transaction(conn):
            conn.execute("BEGIN")
            yield conn
            conn.execute("COMMIT")

    def _one(self, query: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        with self._borrow() as conn:
            found: tuple[Any, ...] | None = conn.execute(query, params).fetchone()
        return found

    def _snapshot(self, *queries: Query) -> builtins.list[builtins.list[tuple[Any, ...]]]:
        with self._read() as conn:
            return [conn.execute(query, params).fetchall() for query, params in queries]

    # reads (revision and changes are SQLStore's)

    def get(self, resource: str, namespace: str, name: str) -> Row | None:
        """SQLStore's, or the row this process read last if nothing was committed since."""
        key = (resource, namespace, name)
        seen = self._generation.stable()  # before the read: see store.generation
        recent = self._recent.get(key)
        if recent is not None and recent[0] == seen:
            return recent[1]
        row = super().get(resource, namespace, name)
        if row is not None and seen is not None:
            if len(self._recent) >= _RECENT_ROWS:
                self._recent.clear()
            self._recent[key] = (seen, row)
        return row

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
        """Objects in (namespace, name) order as of ``revision``; see :class:`store.Store`."""
        with self._read() as conn:
            at, current = read_at(conn.execute(_SQL.meta), revision)
            state = None if at >= current else at  # None: the current objects
            rows, resume = paginate(
                lambda cursor, n: merged(
                    [
                        conn.execute(*query).fetchall()
                        for query in _SQL.page(resource, namespace, state, cursor, n, narrow)
                    ],
                    n,
                ),
                after,
                limit,
                match,
            )
            return Page(at, rows, resume)

    # writes

    def create(
        self,
        resource: str,
        namespace: str,
        name: str,
        obj: Mapping[str, Any],
        fields: Mapping[str, str],
        document: Document | None = None,
    ) -> Row:
        """Store a new object; raises :class:`AlreadyExists`."""
        value, labels, field_values = columns(obj, fields)
        try:
            with self._write() as (conn, rev):
                conn.execute(
                    _INSERT_OBJECT, (resource, namespace, name, rev, value, labels, field_values)
                )
                _append(conn, rev, resource, namespace, name, ADDED, 0)
                _index(conn, resource, namespace, name, (labels, field_values))
                if document is not None:
                    conn.execute(
                        fulltext.SQLITE_INSERT, document.sqlite_row(resource, namespace, name)
                    )
        except sqlite3.IntegrityError as ex:
            raise AlreadyExists(name) from ex
        return stored_row(namespace, name, rev, value, labels, field_values)

    def load(self, resource: str, objects: Sequence[New]) -> int:
        """Create all of ``objects`` in one transaction, as creates would; see
        :class:`store.Store`."""
        rows = [(new.namespace, new.name, *columns(new.obj, new.fields)) for new in objects]
        if not rows:
            return self.revision()
        now = time.time()
        try:
            with self._write(len(rows)) as (conn, last):
                numbered = list(enumerate(rows, last - len(rows) + 1))
                conn.executemany(
                    _INSERT_OBJECT,
                    [(resource, ns, name, rev, *stored) for rev, (ns, name, *stored) in numbered],
                )
                conn.executemany(
                    _INSERT_LOG,
                    [
                        (rev, now, resource, ns, name, ADDED, 0, None, None, None)
                        for rev, (ns, name, *_) in numbered
                    ],
                )
                conn.executemany(
                    _TERMS_OF_ONE,
                    [(resource, ns, name, labels, fields) for ns, name, _, labels, fields in rows],
                )
                conn.executemany(
                    fulltext.SQLITE_INSERT,
                    [
                        new.document.sqlite_row(resource, new.namespace, new.name)
                        for new in objects
                        if new.document is not None
                    ],
                )
        except sqlite3.IntegrityError as ex:
            raise AlreadyExists(str(ex)) from ex
        return last

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
        """Replace the object if still at ``expected_revision``."""
        value, labels, field_values = columns(obj, fields)
        with self._write() as (conn, rev):
            old = _current(conn, resource, namespace, name, expected_revision)
            conn.execute(
                "UPDATE objects SET rev = ?, value = ?, labels = ?, fields = ? "
                "WHERE res = ? AND ns = ? AND name = ?",
                (rev, value, labels, field_values, resource, namespace, name),
            )
            _append(conn, rev, resource, namespace, name, MODIFIED, expected_revision, old)
            _index(conn, resource, namespace, name, (labels, field_values), old[1:])
            _put_document(conn, resource, namespace, name, document)
        return stored_row(namespace, name, rev, value, labels, field_values)

    def delete(self, resource: str, namespace: str, name: str, expected_revision: int) -> Row:
        """Remove the object if still at ``expected_revision``; returns its last state."""
        with self._write() as (conn, rev):
            old = _current(conn, resource, namespace, name, expected_revision)
            conn.execute(
                "DELETE FROM objects WHERE res = ? AND ns = ? AND name = ?",
                (resource, namespace, name),
            )
            _append(conn, rev, resource, namespace, name, DELETED, expected_revision, old)
            _index(conn, resource, namespace, name, None, old[1:])
            conn.execute(_DELETE_DOCUMENT, (resource, namespace, name))
        return stored_row(namespace, name, rev, *old)

    def search(
        self, query: search.Query, limit: int, after: tuple[float, str, str, str] | None = None
    ) -> builtins.list[fulltext.Hit]:
        """The documents matching ``query``, once the pending ones are indexed."""
        self._index_pending()
        return super().search(query, limit, after)

    def _index_pending(self) -> None:
        """Index the words of the documents written since the last time, in one transaction."""
        pending = self._one(fulltext.SQLITE_PENDING, ())
        if pending is None or not pending[0]:
            return
        with self._write_unversioned() as conn:
            for statement in fulltext.SQLITE_SYNC.split(";")[:-1]:
                conn.execute(statement)

    def index(self, resource: str, namespace: str, name: str, document: Document | None) -> None:
        """Put or remove the document of an object kept elsewhere; no revision is taken."""
        with self._write_unversioned() as conn:
            _put_document(conn, resource, namespace, name, document)

    def reindex(self, resource: str, documents: Mapping[tuple[str, str], Document]) -> None:
        """The documents of ``resource`` become ``documents``; unchanged ones are not written."""
        rows = [doc.sqlite_row(resource, ns, name) for (ns, name), doc in documents.items()]
        kept = orjson.dumps([f"{ns}/{name}" for ns, name in documents])  # no "/" in either
        with self._write_unversioned() as conn:
            conn.executemany(_UPSERT_DOCUMENT, rows)
            conn.execute(
                "DELETE FROM documents WHERE res = ? "
                "AND ns || '/' || name NOT IN (SELECT value FROM json_each(?))",
                (resource, kept),
            )

    def lead(self, role: str) -> Leadership | None:
        """An exclusive lock on a file beside the database's, which the system releases when
        the process ends: one holder among the processes of the pod."""
        return FileLock.take(f"{self._path}.{role}.lock")

    @contextmanager
    def _write_unversioned(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes no revision (the search index's own writes)."""
        with self._write_lock, self._borrow() as conn, self._transaction(conn):
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")

    def compact(self, *, min_age_seconds: float, min_revisions: int) -> Compacted:
        """Trim the log to what is younger than the age or within the last revisions, a batch
        per write transaction; then shrink the file and, when no write came since the last
        compaction, empty the WAL."""
        with self._read() as conn:
            current, start = counters(conn.execute(_SQL.meta))
            found = conn.execute(_FIRST_YOUNG, (start, time.time() - min_age_seconds)).fetchone()
        target = max(start, min(current if found is None else found[0], current - min_revisions))
        reached = start
        while reached < target:
            step = min(target, reached + COMPACT_BATCH)
            with self._taking_turns() as conn, self._transaction(conn):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DELETE FROM log WHERE rev > ? AND rev <= ?", (reached, step))
                conn.execute("UPDATE meta SET v = MAX(v, ?) WHERE k = 'compact_rev'", (step,))
                conn.execute("COMMIT")
            reached = step
        self._index_pending()  # unless searches did: the pending list stays short
        self._shrink()
        if current == self._revision_at_compaction:
            self._empty_wal()
        self._revision_at_compaction = current
        return Compacted(target, target - start)

    @contextmanager
    def _taking_turns(self) -> Iterator[sqlite3.Connection]:
        """The write lock for one step of maintenance, then as long a pause without it.

        A lock released and taken again at once is taken by the same thread (it holds the
        interpreter): writers waiting for it would wait for the whole maintenance. The pause
        lets them in, and gives maintenance at most half of the lock's time."""
        started = time.perf_counter()
        with self._write_lock, self._borrow() as conn:
            yield conn
        time.sleep(time.perf_counter() - started)

    def _shrink(self) -> None:
        """Give free pages back to the file system, a step per write transaction, keeping a
        reserve of a quarter of the used pages for the writes to come."""
        freed = 1
        while freed > 0:  # a step frees nothing when the file is not incremental
            with self._taking_turns() as conn:
                free, pages = conn.execute(_PAGES).fetchone()
                spare = free - (pages - free) // 4
                if spare <= 0:
                    return
                # executescript runs the pragma to the end (execute frees a single page)
                conn.executescript(f"PRAGMA incremental_vacuum({min(spare, _VACUUM_PAGES)})")
                freed = free - conn.execute(_PAGES).fetchone()[0]

    def _empty_wal(self) -> None:
        """Checkpoint the whole WAL and truncate it, unless a reader holds it (then the next
        idle compaction tries again): it waits for readers with the write lock held."""
        with self._write_lock, self._borrow() as conn:
            conn.execute(f"PRAGMA busy_timeout={_IDLE_CHECKPOINT_WAIT_MS}")
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            finally:
                conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._idle.clear()
        self._recent.clear()


def _put_document(
    conn: sqlite3.Connection, resource: str, namespace: str, name: str, document: Document | None
) -> None:
    if document is None:
        conn.execute(_DELETE_DOCUMENT, (resource, namespace, name))
    else:
        conn.execute(_UPSERT_DOCUMENT, document.sqlite_row(resource, namespace, name))


class FileLock:
    """An exclusive ``flock`` on a file, held by this open file until released or the end of
    the process (no stale lock survives a crash)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(cls, path: str) -> FileLock | None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(fd)

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops its lock
            self._fd = None


def _current(
    conn: sqlite3.Connection, resource: str, namespace: str, name: str, expected: int
) -> tuple[bytes, bytes, bytes]:
    found = conn.execute(_SQL.get, (resource, namespace, name)).fetchone()
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
    old: tuple[bytes, bytes, bytes] | tuple[None, None, None] = (None, None, None),
) -> None:
    """Log a change with what it replaced (see :func:`store.sql._changes` for what it made)."""
    conn.execute(_INSERT_LOG, (rev, time.time(), resource, namespace, name, kind, prev_rev, *old))


def _index(
    conn: sqlite3.Connection,
    resource: str,
    namespace: str,
    name: str,
    new: tuple[bytes, bytes] | None,
    old: tuple[bytes, bytes] | None = None,
) -> None:
    """Keep the terms index (labels and fields JSON, before and after) in step with a write;
    most updates change neither, and cost it nothing."""
    if old == new:
        return
    if old is not None:
        conn.executemany(
            "DELETE FROM terms WHERE res = ? AND source = ? AND key = ? AND value = ? "
            "AND ns = ? AND name = ?",
            [(resource, *term, namespace, name) for term in _terms(*old)],
        )
    if new is not None:
        conn.execute(_TERMS_OF_ONE, (resource, namespace, name, *new))


def _terms(labels: bytes, fields: bytes) -> list[tuple[str, str, str]]:
    return [(LABEL, k, v) for k, v in orjson.loads(labels).items()] + [
        (FIELD, k, v) for k, v in orjson.loads(fields).items()
    ]
