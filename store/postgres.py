"""The shared store: PostgreSQL, for several server processes and pods on one database.

Same tables and semantics as :mod:`store.sqlite`. Every write is one round trip: a PL/pgSQL
function (installed at start) that first bumps the counter row (``UPDATE meta SET v = v + 1
RETURNING v``), then checks and changes ``objects`` and appends to ``log``, in one autocommit
transaction. The counter row's lock is held until commit and PostgreSQL makes a transaction
visible before it releases its locks, so the next writer gets ``v + 1`` only after ``v`` is
visible: revisions become visible in order and a log poller never sees a gap. Every write
takes the counter first, so writes cannot deadlock; a failed write raises inside the function,
which rolls the counter back (failed writes burn no revision).

Reads are single statements or, when they need several, one pipelined round trip in a
read-only REPEATABLE READ transaction (one snapshot). ``bytea`` is read in binary; ``ns`` and
``name`` are ``text COLLATE "C"`` so that index order is Kubernetes key (byte) order.

Gets that arrive together share a round trip (:mod:`store.coalesce`), a prepared statement
run through libpq itself.

Here: :class:`PostgresStore` with its schema and write functions, connection pool, ``get``,
``list`` (each batch on its own snapshot) and the writes. Its reads' statements, and
``revision`` and ``changes`` themselves, are shared with SQLite in :mod:`store.sql`.
"""

from __future__ import annotations

import builtins
import hashlib
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import TupleRow

from store import (
    COMPACT_BATCH,
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
    stored_row,
)
from store.coalesce import Coalescer
from store.fulltext import Document
from store.sql import Query, SQLStore, Statements, columns, merged, read_at

Connection = psycopg.Connection[TupleRow]

_SQL = Statements("%s")
_SCHEMA_LOCK = 0x6B76_5F73_6368_656D  # pg_advisory_xact_lock key: b"kv_schem"

# SQLSTATEs the write functions raise (class "KV" is not used by PostgreSQL).
_ERRORS: dict[str, Callable[[str], Exception]] = {
    "KV409": AlreadyExists,
    "KV404": NotFound,
    "KV412": Conflict,
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k text PRIMARY KEY, v bigint NOT NULL);
INSERT INTO meta (k, v) VALUES ('rev', 0), ('compact_rev', 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS objects (
    res text COLLATE "C" NOT NULL, ns text COLLATE "C" NOT NULL, name text COLLATE "C" NOT NULL,
    rev bigint NOT NULL, value bytea NOT NULL, labels bytea NOT NULL, fields bytea NOT NULL,
    PRIMARY KEY (res, ns, name)
);
CREATE TABLE IF NOT EXISTS log (
    rev bigint PRIMARY KEY, ts double precision NOT NULL,
    res text COLLATE "C" NOT NULL, ns text COLLATE "C" NOT NULL, name text COLLATE "C" NOT NULL,
    type smallint NOT NULL, prev_rev bigint NOT NULL,
    -- what the change made: no longer written (store.sql._changes reads it from the next
    -- change of the key or the object); entries logged by older versions still carry it
    value bytea, labels bytea, fields bytea,
    old_value bytea, old_labels bytea, old_fields bytea -- what the change replaced
);
DROP INDEX IF EXISTS log_res_rev; -- the log is read in revision order (store.sql._changes)
-- historical pages walk the log in key order beside the objects (store.sql._page)
CREATE INDEX IF NOT EXISTS log_key ON log (res, ns, name, rev);
-- each current object's labels and selectable fields (store.Term), kept by every write
CREATE TABLE IF NOT EXISTS terms (
    res text COLLATE "C" NOT NULL, source text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL, value text COLLATE "C" NOT NULL,
    ns text COLLATE "C" NOT NULL, name text COLLATE "C" NOT NULL,
    PRIMARY KEY (res, source, key, value, ns, name)
);
INSERT INTO meta (k, v) VALUES ('terms', 0) ON CONFLICT DO NOTHING;

-- The terms of one object's labels and fields columns (JSON objects of strings).
CREATE OR REPLACE FUNCTION kv_terms(p_labels bytea, p_fields bytea)
RETURNS TABLE (source text, key text, value text) LANGUAGE sql IMMUTABLE AS $$
    SELECT 'l', l.key, l.value FROM jsonb_each_text(convert_from(p_labels, 'UTF8')::jsonb) l
    UNION ALL
    SELECT 'f', f.key, f.value FROM jsonb_each_text(convert_from(p_fields, 'UTF8')::jsonb) f
$$;

CREATE OR REPLACE FUNCTION kv_index(
    p_res text, p_ns text, p_name text,
    p_labels bytea, p_fields bytea, p_old_labels bytea, p_old_fields bytea
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    term record;
BEGIN
    -- most updates change neither labels nor fields, and cost the index nothing
    IF (p_labels, p_fields) IS NOT DISTINCT FROM (p_old_labels, p_old_fields) THEN
        RETURN;
    END IF;
    -- PL/pgSQL keeps its statements' plans; a LANGUAGE sql function was planned at every
    -- call, which made an update cost 20 ms
    FOR term IN SELECT * FROM kv_terms(p_old_labels, p_old_fields) WHERE p_old_labels IS NOT NULL
    LOOP
        DELETE FROM terms WHERE res = p_res AND source = term.source AND key = term.key
            AND value = term.value AND ns = p_ns AND name = p_name;
    END LOOP;
    INSERT INTO terms (res, source, key, value, ns, name)
    SELECT p_res, n.source, n.key, n.value, p_ns, p_name FROM kv_terms(p_labels, p_fields) n
    WHERE p_labels IS NOT NULL;
END $$;

-- Objects stored before the terms index existed get their terms once (kv_schema_upgrade).
CREATE OR REPLACE FUNCTION kv_schema_upgrade() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT v FROM meta WHERE k = 'terms') = 0 THEN
        INSERT INTO terms (res, source, key, value, ns, name)
        SELECT o.res, t.source, t.key, t.value, o.ns, o.name
        FROM objects o, kv_terms(o.labels, o.fields) t ON CONFLICT DO NOTHING;
        UPDATE meta SET v = 1 WHERE k = 'terms';
    END IF;
END $$;

-- The object's search document: kept (written only when it changed) or, without a kind, gone.
CREATE OR REPLACE FUNCTION kv_document(
    p_res text, p_ns text, p_name text,
    p_kind text, p_generation bigint, p_priority bigint, p_details text, p_words text
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_kind IS NULL THEN
        DELETE FROM documents WHERE res = p_res AND ns = p_ns AND name = p_name;
        RETURN;
    END IF;
    INSERT INTO documents AS d (res, ns, name, kind, generation, priority, details, words)
    VALUES (p_res, p_ns, p_name, p_kind, p_generation, p_priority, p_details,
            to_tsvector('simple', p_words))
    ON CONFLICT (res, ns, name) DO UPDATE SET kind = EXCLUDED.kind,
        generation = EXCLUDED.generation, priority = EXCLUDED.priority,
        details = EXCLUDED.details, words = EXCLUDED.words
    WHERE (d.kind, d.generation, d.priority, d.details)
        IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.generation, EXCLUDED.priority, EXCLUDED.details);
END $$;

-- The functions write the log's type as literals: 0, 1, 2 are store.ADDED, MODIFIED, DELETED.

DROP FUNCTION IF EXISTS kv_create(text, text, text, bytea, bytea, bytea);
CREATE OR REPLACE FUNCTION kv_create(
    p_res text, p_ns text, p_name text, p_value bytea, p_labels bytea, p_fields bytea,
    p_kind text, p_generation bigint, p_priority bigint, p_details text, p_words text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    r bigint;
BEGIN
    UPDATE meta SET v = v + 1 WHERE k = 'rev' RETURNING v INTO r;
    INSERT INTO objects (res, ns, name, rev, value, labels, fields)
    VALUES (p_res, p_ns, p_name, r, p_value, p_labels, p_fields)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'KV409', MESSAGE = p_name;
    END IF;
    INSERT INTO log (rev, ts, res, ns, name, type, prev_rev)
    VALUES (r, extract(epoch FROM clock_timestamp()), p_res, p_ns, p_name, 0 /* ADDED */, 0);
    PERFORM kv_index(p_res, p_ns, p_name, p_labels, p_fields, NULL, NULL);
    IF p_kind IS NOT NULL THEN -- a new object's document is new too: no upsert
        INSERT INTO documents (res, ns, name, kind, generation, priority, details, words)
        VALUES (p_res, p_ns, p_name, p_kind, p_generation, p_priority, p_details,
                to_tsvector('simple', p_words));
    END IF;
    RETURN r;
END $$;

-- Many creates in one transaction, each under its own revision (the arrays' order).
DROP FUNCTION IF EXISTS kv_load(text, text[], text[], bytea[], bytea[], bytea[]);
CREATE OR REPLACE FUNCTION kv_load(
    p_res text, p_ns text[], p_name text[], p_value bytea[], p_labels bytea[], p_fields bytea[],
    p_kind text[], p_generation bigint[], p_priority bigint[], p_details text[], p_words text[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := cardinality(p_name);
    r bigint;
BEGIN
    UPDATE meta SET v = v + n WHERE k = 'rev' RETURNING v INTO r;
    INSERT INTO objects (res, ns, name, rev, value, labels, fields)
    SELECT p_res, x.ns, x.name, r - n + x.i, x.value, x.labels, x.fields
    FROM unnest(p_ns, p_name, p_value, p_labels, p_fields)
        WITH ORDINALITY x(ns, name, value, labels, fields, i);
    INSERT INTO log (rev, ts, res, ns, name, type, prev_rev)
    SELECT r - n + x.i, extract(epoch FROM clock_timestamp()), p_res, x.ns, x.name,
           0 /* ADDED */, 0
    FROM unnest(p_ns, p_name) WITH ORDINALITY x(ns, name, i);
    INSERT INTO terms (res, source, key, value, ns, name)
    SELECT p_res, t.source, t.key, t.value, x.ns, x.name
    FROM unnest(p_ns, p_name, p_labels, p_fields) x(ns, name, labels, fields),
        kv_terms(x.labels, x.fields) t;
    INSERT INTO documents (res, ns, name, kind, generation, priority, details, words)
    SELECT p_res, x.ns, x.name, x.kind, x.generation, x.priority, x.details,
           to_tsvector('simple', x.words)
    FROM unnest(p_ns, p_name, p_kind, p_generation, p_priority, p_details, p_words)
        x(ns, name, kind, generation, priority, details, words)
    WHERE x.kind IS NOT NULL;
    RETURN r;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION USING ERRCODE = 'KV409', MESSAGE = 'one of the objects exists';
END $$;

DROP FUNCTION IF EXISTS kv_update(text, text, text, bigint, bytea, bytea, bytea);
CREATE OR REPLACE FUNCTION kv_update(
    p_res text, p_ns text, p_name text, p_expected bigint,
    p_value bytea, p_labels bytea, p_fields bytea,
    p_kind text, p_generation bigint, p_priority bigint, p_details text, p_words text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    r bigint;
    old objects%ROWTYPE;
BEGIN
    UPDATE meta SET v = v + 1 WHERE k = 'rev' RETURNING v INTO r;
    SELECT * INTO old FROM objects WHERE res = p_res AND ns = p_ns AND name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'KV404', MESSAGE = p_name;
    ELSIF old.rev <> p_expected THEN
        RAISE EXCEPTION USING ERRCODE = 'KV412', MESSAGE = p_name;
    END IF;
    UPDATE objects SET rev = r, value = p_value, labels = p_labels, fields = p_fields
    WHERE res = p_res AND ns = p_ns AND name = p_name;
    INSERT INTO log (rev, ts, res, ns, name, type, prev_rev,
                     old_value, old_labels, old_fields)
    VALUES (r, extract(epoch FROM clock_timestamp()), p_res, p_ns, p_name,
            1 /* MODIFIED */, p_expected, old.value, old.labels, old.fields);
    PERFORM kv_index(p_res, p_ns, p_name, p_labels, p_fields, old.labels, old.fields);
    PERFORM kv_document(p_res, p_ns, p_name, p_kind, p_generation, p_priority, p_details,
                        p_words);
    RETURN r;
END $$;

CREATE OR REPLACE FUNCTION kv_delete(
    p_res text, p_ns text, p_name text, p_expected bigint,
    OUT r_rev bigint, OUT r_value bytea, OUT r_labels bytea, OUT r_fields bytea
) LANGUAGE plpgsql AS $$
DECLARE
    old objects%ROWTYPE;
BEGIN
    UPDATE meta SET v = v + 1 WHERE k = 'rev' RETURNING v INTO r_rev;
    DELETE FROM objects WHERE res = p_res AND ns = p_ns AND name = p_name RETURNING * INTO old;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'KV404', MESSAGE = p_name;
    ELSIF old.rev <> p_expected THEN
        RAISE EXCEPTION USING ERRCODE = 'KV412', MESSAGE = p_name;
    END IF;
    INSERT INTO log (rev, ts, res, ns, name, type, prev_rev,
                     old_value, old_labels, old_fields)
    VALUES (r_rev, extract(epoch FROM clock_timestamp()), p_res, p_ns, p_name,
            2 /* DELETED */, p_expected, old.value, old.labels, old.fields);
    PERFORM kv_index(p_res, p_ns, p_name, NULL, NULL, old.labels, old.fields);
    DELETE FROM documents WHERE res = p_res AND ns = p_ns AND name = p_name;
    r_value := old.value;
    r_labels := old.labels;
    r_fields := old.fields;
END $$;

-- What a compaction would trim: the compacted revision and the target. Log timestamps come
-- from this server's clock under the counter lock, so they grow with the revision: the first
-- entry younger than the cutoff bounds what is old enough.
DROP FUNCTION IF EXISTS kv_compact(double precision, bigint);
CREATE OR REPLACE FUNCTION kv_compaction(
    p_min_age double precision, p_min_revisions bigint, OUT r_start bigint, OUT r_target bigint
) LANGUAGE plpgsql AS $$
DECLARE
    cur bigint;
    by_age bigint;
BEGIN
    SELECT v INTO r_start FROM meta WHERE k = 'compact_rev';
    SELECT v INTO cur FROM meta WHERE k = 'rev';
    SELECT rev - 1 INTO by_age FROM log
    WHERE rev > r_start AND ts >= extract(epoch FROM clock_timestamp()) - p_min_age
    ORDER BY rev LIMIT 1;
    r_target := GREATEST(r_start, LEAST(COALESCE(by_age, cur), cur - p_min_revisions));
END $$;

-- One transaction of a compaction: at most p_batch entries, up to p_target; returns the
-- compacted revision reached. Short transactions let autovacuum reclaim the rows as it goes.
CREATE OR REPLACE FUNCTION kv_compact(p_target bigint, p_batch bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    compacted bigint;
    step bigint;
BEGIN
    SELECT v INTO compacted FROM meta WHERE k = 'compact_rev' FOR UPDATE;
    step := LEAST(p_target, compacted + p_batch);
    IF step <= compacted THEN
        RETURN compacted;
    END IF;
    DELETE FROM log WHERE rev > compacted AND rev <= step;
    UPDATE meta SET v = step WHERE k = 'compact_rev';
    RETURN step;
END $$;
"""

_BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"


class PostgresStore(SQLStore):
    """:class:`store.Store` on a PostgreSQL database, shared by any number of processes."""

    _sql = _SQL
    _fulltext = fulltext.PostgresCompiler()

    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout: int = 10) -> None:
        """Connect to ``url`` (a libpq URL or DSN), create the schema if missing, open a pool
        of up to ``pool_size`` connections shared by all threads (a thread waits up to 30 s
        for a free one), and one more for the gets. Raises :class:`psycopg.OperationalError`
        at once when the database cannot be reached. Open it after forking: connections do
        not survive a fork."""
        self._url, self._connect_timeout = url, connect_timeout
        self._idle: builtins.list[Connection] = []  # list.pop/append are atomic
        self._slots = threading.BoundedSemaphore(pool_size)
        self._closed = False
        self._gets = Coalescer(self._rows, most=len(_GETS))
        self._reader: Connection | None = None  # the gets' own connection (see _rows)
        self._reading = threading.Lock()  # held while the reader is used or closed
        with self._borrow() as conn:
            _install_schema(conn)

    # connections

    @contextmanager
    def _borrow(self) -> Iterator[Connection]:
        """An idle connection (or a new one, up to the pool's size) for one operation; one
        left broken or inside a transaction is closed rather than reused.

        A plain LIFO list: a pool library's bookkeeping cost a get a quarter of its time."""
        if self._closed:
            raise psycopg.OperationalError("the store is closed")
        if not self._slots.acquire(timeout=30):
            raise psycopg.OperationalError("no free database connection within 30 s")
        conn = None
        try:
            try:
                conn = self._idle.pop()
            except IndexError:
                conn = self._connect()
            yield conn
        finally:
            if conn is not None:
                idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                if idle and not conn.closed and not self._closed:
                    self._idle.append(conn)
                else:
                    conn.close()
            self._slots.release()

    def _connect(self) -> Connection:
        return psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=self._connect_timeout,
            client_encoding="UTF8",  # what the gets' keys are sent in
        )

    def _one(self, query: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """The first row of one autocommit statement."""
        with self._borrow() as conn:
            return conn.execute(query, params, binary=True).fetchone()

    def _snapshot(self, *queries: Query) -> builtins.list[builtins.list[tuple[Any, ...]]]:
        """The rows of each query, all read from one snapshot, in one round trip."""
        with self._borrow() as conn:
            try:
                with conn.pipeline():
                    conn.execute(_BEGIN_SNAPSHOT)
                    cursors = [
                        conn.execute(query, params, binary=True) for query, params in queries
                    ]
                    conn.execute("COMMIT")
            except BaseException:
                if not conn.broken:
                    conn.rollback()
                raise
            return [cursor.fetchall() for cursor in cursors]

    def _write(self, query: str, params: Sequence[Any]) -> tuple[Any, ...]:
        """Call a write function; its SQLSTATE becomes the store's error."""
        try:
            found = self._one(query, params)
        except psycopg.Error as ex:
            error = _ERRORS.get(ex.sqlstate or "")
            if error is None:
                raise
            raise error(ex.diag.message_primary or "") from None
        assert found is not None
        return found

    # reads (revision and changes are SQLStore's)

    def get(self, resource: str, namespace: str, name: str) -> Row | None:
        """The current object, or None. Gets that arrive together share a round trip
        (:mod:`store.coalesce`), made through libpq itself with a prepared statement: through
        a psycopg cursor, a lone get cost 118-130 µs of this process's CPU, now 48-63."""
        found = self._gets.get((resource.encode(), namespace.encode(), name.encode()))
        if found is None:
            return None
        return stored_row(namespace, name, *found)

    def _rows(self, keys: Sequence[_Key]) -> dict[_Key, _Found]:
        """The current rows of ``keys`` (those that exist), in one round trip.

        Only the gets' leader calls this, one at a time, so it has a connection of its own,
        outside the pool (borrowing one costs 10 µs of CPU, a third of the statement's); one
        that failed is closed, and the next get opens another."""
        params = [part for key in keys for part in key]
        with self._reading:
            if self._closed:
                raise psycopg.OperationalError("the store is closed")
            conn, self._reader = self._reader or self._connect(), None
            try:
                result = _prepared(conn.pgconn, _GETS[len(keys) - 1], params)
            except BaseException:
                conn.close()
                raise
            self._reader = conn
        rows = {}
        value = result.get_value
        for row in range(result.ntuples):
            key = (value(row, 0) or b"", value(row, 1) or b"", value(row, 2) or b"")
            rev, body = _INT8.unpack(value(row, 3) or b"")[0], value(row, 4) or b""
            rows[key] = (rev, body, value(row, 5) or b"", value(row, 6) or b"")
        return rows

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
        """Objects in (namespace, name) order as of ``revision``; see :class:`store.Store`.

        Each batch is read with the counters on one snapshot; after the first, batches are
        rebuilt at the first batch's revision, so the page is consistent without holding a
        transaction open while ``match`` runs."""
        at = revision

        def read(cursor: tuple[str, str], fetch: int | None) -> builtins.list[Row]:
            nonlocal at
            meta, *found = self._snapshot(
                (_SQL.meta, ()), *_SQL.page(resource, namespace, at, cursor, fetch, narrow)
            )
            at, _ = read_at(meta, at)
            return merged(found, fetch)

        rows, resume = paginate(read, after, limit, match)
        assert at is not None
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
        (rev,) = self._write(
            "SELECT kv_create(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (resource, namespace, name, value, labels, field_values, *_document(document)),
        )
        return stored_row(namespace, name, rev, value, labels, field_values)

    def load(self, resource: str, objects: Sequence[New]) -> int:
        """Create all of ``objects`` in one transaction, as creates would; see
        :class:`store.Store`. Then the planner's statistics are brought up to date: planned
        on an empty table's, a selector's page joins the whole namespace."""
        if not objects:
            return self.revision()
        stored = [columns(new.obj, new.fields) for new in objects]
        documents = [_document(new.document) for new in objects]
        (last,) = self._write(
            "SELECT kv_load(%s, %s::text[], %s::text[], %s::bytea[], %s::bytea[], %s::bytea[], "
            "%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::text[])",
            (
                resource,
                [new.namespace for new in objects],
                [new.name for new in objects],
                *map(list, zip(*stored, strict=True)),
                *map(list, zip(*documents, strict=True)),
            ),
        )
        with self._borrow() as conn:  # what autovacuum would do a minute later
            conn.execute("ANALYZE objects, terms")
        return int(last)

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
        (rev,) = self._write(
            "SELECT kv_update(%s, %s, %s, %s::bigint, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                resource,
                namespace,
                name,
                expected_revision,
                value,
                labels,
                field_values,
                *_document(document),
            ),
        )
        return stored_row(namespace, name, rev, value, labels, field_values)

    def delete(self, resource: str, namespace: str, name: str, expected_revision: int) -> Row:
        """Remove the object if still at ``expected_revision``; returns its last state."""
        rev, value, labels, field_values = self._write(
            "SELECT * FROM kv_delete(%s, %s, %s, %s::bigint)",
            (resource, namespace, name, expected_revision),
        )
        return stored_row(namespace, name, rev, value, labels, field_values)

    def index(self, resource: str, namespace: str, name: str, document: Document | None) -> None:
        """Put or remove the document of an object kept elsewhere; no revision is taken."""
        self._write(
            f"SELECT kv_document({_DOCUMENT_ARGS})",
            (resource, namespace, name, *_document(document)),
        )

    def reindex(self, resource: str, documents: Mapping[tuple[str, str], Document]) -> None:
        """The documents of ``resource`` become ``documents``; unchanged ones are not written."""
        with self._borrow() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(
                f"SELECT kv_document({_DOCUMENT_ARGS})",
                [(resource, ns, name, *doc.values()) for (ns, name), doc in documents.items()],
            )
            cursor.execute(
                "DELETE FROM documents WHERE res = %s AND NOT ns || '/' || name = ANY(%s)",
                (resource, [f"{ns}/{name}" for ns, name in documents]),  # no "/" in either
            )

    def lead(self, role: str) -> Leadership | None:
        """A session advisory lock on a connection of its own: PostgreSQL releases it when
        that connection ends, so a replica that dies gives the role up."""
        return AdvisoryLock.take(self._url, role, self._connect_timeout)

    def compact(self, *, min_age_seconds: float, min_revisions: int) -> Compacted:
        """Trim the log to what is younger than the age or within the last revisions, a batch
        per transaction."""
        start, target = self._write(
            "SELECT * FROM kv_compaction(%s::float8, %s::bigint)", (min_age_seconds, min_revisions)
        )
        reached = start
        while reached < target:
            started = time.perf_counter()
            (reached,) = self._write(
                "SELECT kv_compact(%s::bigint, %s::bigint)", (target, COMPACT_BATCH)
            )
            time.sleep(time.perf_counter() - started)  # half of the time for the writers
        return Compacted(target, target - start)

    def close(self) -> None:
        """Close the connections (those in use, when they come back)."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
        with self._reading:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


_DOCUMENT_ARGS = "%s, %s, %s, %s, %s::bigint, %s::bigint, %s, %s"


_Key = tuple[bytes, bytes, bytes]
"""(res, ns, name), as sent and as read."""
_Found = tuple[int, bytes, bytes, bytes]
"""rev, value, labels, fields."""


def _gets(keys: int) -> tuple[bytes, bytes]:
    """The prepared statement (name, query) reading the rows of ``keys`` keys."""
    wanted = ", ".join(f"(${n}, ${n + 1}, ${n + 2})" for n in range(1, 3 * keys, 3))
    query = (
        "SELECT res, ns, name, rev, value, labels, fields FROM objects "
        f"WHERE (res, ns, name) IN ({wanted})"
    )
    return f"kv_get_{keys}".encode(), query.encode()


_GETS = tuple(_gets(keys) for keys in range(1, 9))
_INT8 = struct.Struct(">q")
_BINARY = pq.Format.BINARY
_UNKNOWN_STATEMENT = b"26000"  # invalid_sql_statement_name: not prepared on this connection


def _prepared(
    pgconn: pq.abc.PGconn, statement: tuple[bytes, bytes], params: Sequence[bytes]
) -> pq.abc.PGresult:
    """The rows of a prepared ``(name, query)``, in PostgreSQL's binary form. ``params``
    are text, sent in binary form, so their length is theirs (libpq reads a text-form
    parameter up to its first NUL).

    Prepared on first use on a connection, and again if anything deallocated it. libpq's
    call waits for the answer with Python's lock released once."""
    name, query = statement
    formats = [_BINARY] * len(params)
    result = pgconn.exec_prepared(name, params, formats, _BINARY)
    if result.error_field(pq.DiagnosticField.SQLSTATE) == _UNKNOWN_STATEMENT:
        prepared = pgconn.prepare(name, query)
        if prepared.status != pq.ExecStatus.COMMAND_OK:
            raise _failure(pgconn, prepared)
        result = pgconn.exec_prepared(name, params, formats, _BINARY)
    if result.status != pq.ExecStatus.TUPLES_OK:
        raise _failure(pgconn, result)
    return result


def _failure(pgconn: pq.abc.PGconn, result: pq.abc.PGresult) -> psycopg.Error:
    """The psycopg error of a failed libpq call: its SQLSTATE's class, or an
    OperationalError when there is none (the connection failed)."""
    message = (result.error_message or pgconn.error_message).decode(errors="replace").strip()
    sqlstate = result.error_field(pq.DiagnosticField.SQLSTATE)
    if sqlstate is None:
        return psycopg.OperationalError(message)
    return psycopg.errors.lookup(sqlstate.decode())(message)


class AdvisoryLock:
    """A session-level advisory lock held by a connection of its own."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @classmethod
    def take(cls, url: str, role: str, connect_timeout: int) -> AdvisoryLock | None:
        key = int.from_bytes(hashlib.sha256(role.encode()).digest()[:8], "big", signed=True)
        conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout)
        found = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not (found and found[0]):
            conn.close()
            return None
        return cls(conn)

    def held(self) -> bool:
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def release(self) -> None:
        self._conn.close()  # the session's end releases its advisory locks


def _document(document: Document | None) -> tuple[Any, ...]:
    """The document arguments of the write functions (all None: no document)."""
    if document is None:
        return (None,) * 5
    return document.values()


def _install_schema(conn: Connection) -> None:
    """Create what is missing; one process at a time (concurrent DDL would collide)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        conn.execute(_SCHEMA + fulltext.POSTGRES_SCHEMA)
        conn.execute("SELECT kv_schema_upgrade()")
