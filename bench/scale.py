"""The scale phase: what reads cost when one namespace holds a million customtasks, and what a
store holds after a million updates.

The store is filled by its own bulk path (:meth:`store.Store.load`, objects shaped as the
create handler stores them), first to ``base`` objects, then to ``objects``; each time a
server is started on it and measured over HTTPS by one client on one connection, as a user
of ``kubectl`` would meet it: a get's p50 (random names), the first page of ``limit=500``
and page 1,000 (its continue token taken from the whole paged list, which is timed too), a
label selector matching one object and one matching 1% (unpaged). Then the churn: ``churn``
updates spread over 10,000 objects, by the store's update path in process, compacted as a
server's compactor would (every 60 s, keeping 5 minutes); the database's size is divided by
the live objects' bytes plus the bytes the kept log entries hold. The targets are issue
12's; PostgreSQL is allowed twice each time.
"""

from __future__ import annotations

import math
import random
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from bench.report import Goal, percentile, table, verdict
from bench.scenarios import task
from bench.serve import REAL_APP, Launch
from bench.wire import Connection, Target
from handlers.registry import find
from store import New, Store
from store.compactor import MIN_AGE_SECONDS, MIN_REVISIONS
from store.postgres import PostgresStore
from store.sqlite import SQLiteStore

NAMESPACE = "scale"
RESOURCE = "customtasks"
CHUNK = 10_000  # objects per load transaction
CHURN_OBJECTS = 10_000
COMPACT_EVERY = 60.0  # seconds, as the server's compactor
TIMES = 20  # timed repetitions of each list (median quoted)
GETS = 500
PAGE = 500
DEEP_PAGE = 1000
BUCKETS = 100  # label "bucket" takes BUCKETS values: one of them matches 1%
COLLECTION = f"/apis/search.task.example.example.com/v1/namespaces/{NAMESPACE}/{RESOURCE}"
_CONTINUE = re.compile(rb'"continue":"([^"]*)"')


@dataclass(frozen=True, slots=True)
class Engine:
    """The store measured: how the server finds it, how this process opens it, its size on
    disk, one row of a query, and how much longer than SQLite its figures may take."""

    name: str
    env: Mapping[str, str]
    open: Callable[[], Store]
    size: Callable[[], int]
    query: Callable[[str], tuple[Any, ...]]
    allowance: float = 1.0


@dataclass(frozen=True, slots=True)
class Line:
    """One figure of the phase."""

    label: str
    value: float
    unit: str
    goal: Goal | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        return verdict(self.goal, self.value)


def sqlite_engine(directory: Path, name: str) -> Engine:
    """A SQLite file under ``directory``; its size counts the WAL."""
    path = directory / f"{name}.db"

    def size() -> int:
        return sum(p.stat().st_size for p in directory.glob(f"{name}.db*"))

    def query(sql: str) -> tuple[Any, ...]:
        with closing(sqlite3.connect(path)) as conn:
            found: tuple[Any, ...] = conn.execute(sql).fetchone()
        return found

    env = {"APISERVER_SQLITE_PATH": str(path)}
    return Engine("SQLite", env, lambda: SQLiteStore(str(path)), size, query)


def postgres_engine(url: str) -> Engine:
    """A PostgreSQL database; its size is PostgreSQL's count of the database."""

    def query(sql: str) -> tuple[Any, ...]:
        with psycopg.connect(url) as conn:
            found = conn.execute(sql).fetchone()
        assert found is not None
        return found

    def size() -> int:
        return int(query("SELECT pg_database_size(current_database())")[0])

    env = {"APISERVER_DATABASE_URL": url}
    return Engine("PostgreSQL", env, lambda: PostgresStore(url), size, query, allowance=2.0)


def stored(number: int) -> dict[str, Any]:
    """The customtask ``number`` as the create handler stores it, with a label unique to it
    (``slot``) and one it shares with 1% of the others (``bucket``)."""
    obj = task(f"s-{number:07d}")
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    meta.update(
        namespace=NAMESPACE,
        uid=str(uuid.UUID(int=number)),
        creationTimestamp="2026-01-01T00:00:00Z",
        generation=1,
        labels={"app": "search", "slot": str(number), "bucket": str(number % BUCKETS)},
    )
    return obj


def load(store: Store, first: int, last: int) -> None:
    """Objects ``first`` to ``last - 1`` by the store's bulk path."""
    kind = find(RESOURCE)
    assert kind is not None
    for start in range(first, last, CHUNK):
        batch = []
        for number in range(start, min(last, start + CHUNK)):
            obj = stored(number)
            fields, document = kind.kind.field_values(obj), kind.kind.search_document(obj)
            batch.append(New(NAMESPACE, obj["metadata"]["name"], obj, fields, document))
        store.load(RESOURCE, batch)


def run(
    root: Path,
    launch: Launch,
    engine: Engine,
    churn_engine: Engine,
    objects: int,
    base: int,
    churn: int,
    say: Callable[[str], None],
) -> list[Line]:
    """The phase on one engine: reads at ``base`` then ``objects`` objects, then the churn."""
    lines: list[Line] = []
    store = engine.open()
    try:
        began = time.monotonic()
        load(store, 0, base)
        small = _reads(root / "small", launch, engine, base)
        say(f"{engine.name}: filling to {objects:,} objects")
        load(store, base, objects)
        filled = time.monotonic() - began
    finally:
        store.close()
    size = engine.size()
    large = _reads(root / "large", launch, engine, objects)
    bound = engine.allowance
    get_ratio = large.get_p50 / small.get_p50
    lines += [
        Line(f"bulk fill of {objects:,}", filled, "s", note=f"{objects / filled:,.0f} objects/s"),
        Line("on-disk bytes per object", size / objects, "B", note=f"{size / 1e6:,.0f} MB"),
        Line(
            f"get p50 at {base:,}",
            small.get_p50 * 1000,
            "ms",
            note=f"{min(GETS, base)} random names",
        ),
        Line(f"get p50 at {objects:,}", large.get_p50 * 1000, "ms"),
        Line(f"get p50 {objects:,} / {base:,}", get_ratio, "x", Goal(1.2, at_least=False)),
        Line("first page, limit=500", large.first_page * 1000, "ms", Goal(15 * bound, False)),
        Line(
            f"page {large.deep:,}, limit=500", large.deep_page * 1000, "ms", Goal(15 * bound, False)
        ),
        Line(
            f"whole paged list ({large.listed:,} objects)",
            large.whole_list,
            "s",
            Goal(60 * bound, False),
            note=f"{large.pages:,} pages",
        ),
        Line("label selector, 1 match", large.one_match * 1000, "ms", Goal(10 * bound, False)),
        Line(
            f"label selector, 1% ({large.one_percent_items:,} items, unpaged)",
            large.one_percent * 1000,
            "ms",
            Goal(150 * bound, False),
        ),
    ]
    say(f"{engine.name}: churn, {churn:,} updates on {CHURN_OBJECTS:,} objects")
    lines += _churn(churn_engine, churn)
    return lines


@dataclass(frozen=True, slots=True)
class _Reads:
    get_p50: float
    first_page: float
    deep_page: float
    whole_list: float
    deep: int  # the page timed as deep_page: DEEP_PAGE, or the last one of a shorter list
    pages: int
    listed: int
    one_match: float
    one_percent: float
    one_percent_items: int


def _reads(directory: Path, launch: Launch, engine: Engine, objects: int) -> _Reads:
    """The read figures of a server started on the filled store."""
    with launch.serve(directory, REAL_APP, env=engine.env) as served:
        conn = Connection(served.target)
        try:
            return _measure(conn, served.target, objects)
        finally:
            conn.close()


def _measure(conn: Connection, target: Target, objects: int) -> _Reads:
    def timed(path: str, times: int = TIMES) -> tuple[float, bytes]:
        request = target.get(path)
        body = _ok(conn.exchange(request, keep=True))  # warm, and checked
        took = []
        for _ in range(times):
            began = time.perf_counter()
            _ok(conn.exchange(request))
            took.append(time.perf_counter() - began)
        return percentile(took, 50), body

    names = random.Random(12).sample(range(objects), min(GETS, objects))
    gets = []
    for number in names:
        request = target.get(f"{COLLECTION}/s-{number:07d}")
        began = time.perf_counter()
        _ok(conn.exchange(request))
        gets.append(time.perf_counter() - began)
    first_page, _ = timed(f"{COLLECTION}?limit={PAGE}")

    began = time.perf_counter()
    token, pages, deep_token, listed = "", 0, "", 0
    while True:
        path = f"{COLLECTION}?limit={PAGE}" + (f"&continue={quote(token)}" if token else "")
        body = _ok(conn.exchange(target.get(path), keep=True))
        pages += 1
        listed += body.count(b'"uid":')
        found = _CONTINUE.search(body, 0, 1000)
        if found is None or not found.group(1):
            break
        token = found.group(1).decode()
        if pages < DEEP_PAGE:
            deep_token = token  # the token of page ``pages + 1``
    whole = time.perf_counter() - began
    deep_page = math.nan
    if deep_token:
        deep_page, _ = timed(f"{COLLECTION}?limit={PAGE}&continue={quote(deep_token)}")
    one_match, _ = timed(f"{COLLECTION}?labelSelector=" + quote(f"slot={objects // 2}"))
    one_percent, body = timed(f"{COLLECTION}?labelSelector=" + quote("bucket=7"), TIMES // 2)
    return _Reads(
        percentile(gets, 50),
        first_page,
        deep_page,
        whole,
        min(pages, DEEP_PAGE),
        pages,
        listed,
        one_match,
        one_percent,
        body.count(b'"uid":'),
    )


def _ok(reply: Any) -> bytes:
    if reply.status != 200:
        raise RuntimeError(f"HTTP {reply.status}: {reply.body[:300]!r}")
    body: bytes = reply.body
    return body


def _churn(engine: Engine, updates: int) -> list[Line]:
    """``updates`` updates over :data:`CHURN_OBJECTS` objects, compacted as a server would."""
    store = engine.open()
    try:
        load(store, 0, CHURN_OBJECTS)
        kind = find(RESOURCE)
        assert kind is not None
        rows = {row.name: row for row in store.list(RESOURCE, NAMESPACE).rows}
        objects = {name: stored(int(name[2:])) for name in rows}
        with _compacting(store):
            began = time.monotonic()
            for number in range(updates):
                name = f"s-{number % CHURN_OBJECTS:07d}"
                obj = objects[name]
                obj["spec"]["priority"] = number % 10
                rows[name] = store.update(
                    RESOURCE,
                    NAMESPACE,
                    name,
                    rows[name].revision,
                    obj,
                    kind.kind.field_values(obj),
                    kind.kind.search_document(obj),
                )
            took = time.monotonic() - began
        store.compact(min_age_seconds=MIN_AGE_SECONDS, min_revisions=MIN_REVISIONS)
    finally:
        store.close()
    live, logged, entries = _payload(engine)
    size = engine.size()
    return [
        Line(f"churn: {updates:,} updates", updates / took, "/s", note=f"{took:,.0f} s"),
        Line(
            "churn: database / (live + kept log)",
            size / (live + logged),
            "x",
            Goal(3, at_least=False),
            note=f"{size / 1e6:,.0f} MB; live {live / 1e6:,.1f} MB, "
            f"log {entries:,} entries {logged / 1e6:,.0f} MB",
        ),
    ]


@contextmanager
def _compacting(store: Store) -> Iterator[None]:
    stop = threading.Event()

    def compact() -> None:
        while not stop.wait(COMPACT_EVERY):
            store.compact(min_age_seconds=MIN_AGE_SECONDS, min_revisions=MIN_REVISIONS)

    thread = threading.Thread(target=compact, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _payload(engine: Engine) -> tuple[int, int, int]:
    """Bytes of the live objects' columns; bytes the log's entries hold, and their count."""
    (live,) = engine.query(
        "SELECT SUM(length(value) + length(labels) + length(fields)) FROM objects"
    )
    entries, logged = engine.query(
        "SELECT COUNT(*), SUM(COALESCE(length(value), 0) + COALESCE(length(labels), 0) "
        "+ COALESCE(length(fields), 0) + COALESCE(length(old_value), 0) "
        "+ COALESCE(length(old_labels), 0) + COALESCE(length(old_fields), 0)) FROM log"
    )
    return int(live), int(logged or 0), int(entries)


def report(title: str, lines: Sequence[Line]) -> str:
    """A phase's table under ``title``."""
    rows = [
        [
            line.label,
            f"{line.value:,.2f} {line.unit}"
            if line.unit in ("x", "ms")
            else f"{line.value:,.0f} {line.unit}",
            f"{line.goal} {line.unit}" if line.goal else "-",
            line.verdict,
            line.note,
        ]
        for line in lines
    ]
    return title + ":\n" + table(["figure", "value", "target", "verdict", "note"], rows, right={1})


def title(name: str, objects: int) -> str:
    """The scale table's title on engine ``name``."""
    return f"Scale, {name}: one namespace of {objects:,} customtasks, one client over HTTPS"
