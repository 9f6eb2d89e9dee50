"""The PostgreSQL store: the store contract, revisions in commit order under concurrent
writers, many processes on one database, and watches across server processes."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from store import LABEL, AlreadyExists, Change, Conflict, NotFound, Term
from store.fulltext import Document
from store.postgres import PostgresStore
from store.search import parse
from store.sql import Statements
from store.tailer import Tailer
from tests.store import contract
from tests.store.contract import obj
from tests.support.postgres import postgres_database_fixture, postgres_url_fixture  # noqa: F401

NEEDLE = Term(LABEL, "tag", ("needle",))


@pytest.fixture
def store(postgres_database: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(postgres_database)
    yield opened
    opened.close()


def test_every_write_takes_the_next_revision_and_is_logged(
    store: PostgresStore, postgres_database: str
) -> None:
    contract.every_write_takes_the_next_revision_and_is_logged(store)
    with psycopg.connect(postgres_database) as conn:
        log = conn.execute("SELECT rev, type, prev_rev FROM log ORDER BY rev").fetchall()
    assert log == [(1, 0, 0), (2, 0, 0), (3, 1, 1), (4, 2, 2)]


def test_changes_of_one_resource(store: PostgresStore) -> None:
    contract.changes_can_be_read_for_one_resource(store)


def test_optimistic_concurrency(store: PostgresStore) -> None:
    contract.optimistic_concurrency(store)


def test_get(store: PostgresStore) -> None:
    contract.get_returns_the_stored_row(store)


def test_a_get_prepares_its_statement_again_when_the_session_lost_it(
    store: PostgresStore,
) -> None:
    """A get's statement is prepared on the gets' connection on first use; DISCARD ALL (as
    a pooler may send) drops it, and the next get prepares it again."""
    store.create("r", "ns", "a", obj("a"), {})
    assert (got := store.get("r", "ns", "a")) is not None and got.revision == 1
    reader = store._reader
    assert reader is not None
    names = reader.execute("SELECT name FROM pg_prepared_statements").fetchall()
    assert names == [("kv_get_1",)]
    reader.execute("DISCARD ALL")
    store.update("r", "ns", "a", 1, obj("a", x="1"), {})
    assert (got := store.get("r", "ns", "a")) is not None and got.revision == 2
    assert store._reader is reader
    assert store.get("r", "ns", "missing") is None


def test_gets_of_many_threads_see_every_write_that_returned_before_them(
    store: PostgresStore,
) -> None:
    """8 threads update objects in turn and read them back, their gets sharing round trips:
    a get never returns an object older than a write that returned before it began."""
    names = [f"t{n}" for n in range(8)]
    latest = {name: store.create("r", "ns", name, obj(name), {}).revision for name in names}
    stale: list[tuple[str, int, int]] = []

    def run(mine: str) -> None:
        for round_ in range(60):
            other = names[(names.index(mine) + round_) % len(names)]
            if other == mine:
                latest[mine] = store.update("r", "ns", mine, latest[mine], obj(mine), {}).revision
            seen = latest[other]
            got = store.get("r", "ns", other)
            if got is None or got.revision < seen:
                stale.append((other, seen, got.revision if got else 0))

    threads = [threading.Thread(target=run, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert stale == []


def test_a_get_names_non_ascii_keys_exactly(store: PostgresStore) -> None:
    """Keys are sent in UTF-8 (the client encoding the store asks for) and matched exactly."""
    for name in ("é", "日本", "a" * 300):
        store.create("r", "ns", name, obj(name), {})
    assert [(row.name if (row := store.get("r", "ns", n)) else None) for n in ("é", "日本")] == [
        "é",
        "日本",
    ]
    assert store.get("r", "ns", "e") is None
    assert (long := store.get("r", "ns", "a" * 300)) is not None and long.name == "a" * 300


def test_a_failed_get_raises_its_sqlstate_and_the_store_recovers(
    store: PostgresStore, postgres_database: str
) -> None:
    """A get's error is psycopg's class for its SQLSTATE; a connection the server ended
    raises an OperationalError and is not lent again."""
    store.create("r", "ns", "a", obj("a"), {})
    with psycopg.connect(postgres_database, autocommit=True) as admin:
        admin.execute("ALTER TABLE objects RENAME TO objects_away")
        with pytest.raises(psycopg.errors.UndefinedTable, match='"objects" does not exist'):
            store.get("r", "ns", "a")
        admin.execute("ALTER TABLE objects_away RENAME TO objects")
        assert store.get("r", "ns", "a") is not None
        others = (
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        admin.execute(f"SELECT pg_terminate_backend(pid) {others}")
        deadline = time.monotonic() + 10
        while admin.execute(f"SELECT count(*) {others}").fetchone() != (0,):
            assert time.monotonic() < deadline, "the store's sessions outlived their termination"
            time.sleep(0.01)
    with pytest.raises(psycopg.OperationalError):
        store.get("r", "ns", "a")
    assert (got := store.get("r", "ns", "a")) is not None and got.revision == 1


def test_lists_are_in_byte_order(store: PostgresStore) -> None:
    contract.list_is_in_byte_order_and_scoped(store)


def test_filtered_lists_read_past_a_batch(store: PostgresStore) -> None:
    contract.list_filters_across_batches(store)


def test_list_at_an_old_revision_rebuilds_that_state(store: PostgresStore) -> None:
    contract.list_at_an_old_revision_rebuilds_that_state(store)


def test_paging_under_writes_returns_each_object_once_as_it_was(store: PostgresStore) -> None:
    contract.paging_under_writes_returns_each_object_once_as_it_was(store)


def test_a_page_walks_the_indexes_in_key_order_and_sorts_nothing(
    store: PostgresStore, postgres_database: str
) -> None:
    """A page must cost what it returns. With 400,000 objects in 20 namespaces (40 labelled
    ``tag=needle``) and 20,000 log rows, analyzed, the planner must walk the objects (or the
    terms index, then each object by key) in key order for LIMIT to stop, never scan a table
    whole, and sort nothing but the log's changes after an older revision (found by revision),
    for every shape: cluster-wide or namespaced, current or older, with or without a term."""
    store.create("r", "ns0", "first", obj("first"), {})
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO objects (res, ns, name, rev, value, labels, fields) "
            "SELECT 'r', 'ns' || (i % 20), 'o' || lpad(i::text, 6, '0'), i, '{}', "
            'convert_to(CASE WHEN i % 10000 = 0 THEN \'{"tag":"needle"}\' '
            "ELSE '{\"tag\":\"hay\"}' END, 'UTF8'), '{}' FROM generate_series(2, 400000) AS i"
        )
        conn.execute(
            "INSERT INTO terms (res, source, key, value, ns, name) "
            "SELECT o.res, t.source, t.key, t.value, o.ns, o.name "
            "FROM objects o, kv_terms(o.labels, o.fields) t WHERE o.name <> 'first'"
        )
        conn.execute(
            "INSERT INTO log (rev, ts, res, ns, name, type, prev_rev, value, labels, fields, "
            "old_value, old_labels, old_fields) "
            "SELECT i, 0, 'r', 'ns' || (i % 20), 'o' || lpad(i::text, 6, '0'), 1, i - 1, "
            "'{}', '{}', '{}', '{}', '{}', '{}' FROM generate_series(400001, 420000) AS i"
        )
        conn.execute("ANALYZE")
        shapes = itertools.product([None, "ns1"], [None, 419_000], [None, NEEDLE])
        for namespace, at, narrow in shapes:
            statements = Statements("%s").page("r", namespace, at, ("ns1", "o000001"), 500, narrow)
            first, *log = (
                "\n".join(row[0] for row in conn.execute(f"EXPLAIN {query}", params))
                for query, params in statements
            )
            assert "Sort" not in first and "Seq Scan" not in first, first
            walked = "using terms_pkey" if narrow else "Index Scan using objects_pkey"
            assert walked in first, first
            for plan in log:
                assert "Seq Scan" not in plan, plan
                assert "Index Cond: (rev >" in plan or "using log_key" in plan, plan
        for resource in (None, "r"):  # watches: the log by revision, each entry's next seeks
            query, params = Statements("%s").changes(419_000, resource, 500)
            plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {query}", params))
            assert "Seq Scan" not in plan and "Sort" not in plan, plan
            assert "Index Scan using log_pkey on log l" in plan, plan


def test_a_load_is_many_creates_all_or_nothing(store: PostgresStore) -> None:
    contract.a_load_is_many_creates_all_or_nothing(store)


def test_search_documents_follow_every_write(store: PostgresStore) -> None:
    contract.search_documents_follow_every_write(store)


def test_documents_of_objects_kept_elsewhere_take_no_revision(store: PostgresStore) -> None:
    contract.documents_of_objects_kept_elsewhere_take_no_revision(store)


def test_paging_through_tied_hits_returns_each_once(store: PostgresStore) -> None:
    contract.paging_through_tied_hits_returns_each_once(store)


def test_one_process_leads_a_role_at_a_time(store: PostgresStore) -> None:
    contract.one_process_leads_a_role_at_a_time(store)


def test_compaction_expires_old_revisions_only(store: PostgresStore) -> None:
    contract.compaction_expires_old_revisions_only(store)


def test_compaction_keeps_no_writer_waiting(store: PostgresStore) -> None:
    contract.compaction_keeps_no_writer_waiting(store)


def test_data_survives_reopening(postgres_database: str) -> None:
    contract.data_survives_reopening(lambda: PostgresStore(postgres_database))


def test_opening_an_existing_store_keeps_its_data_and_schema(postgres_database: str) -> None:
    stores = [PostgresStore(postgres_database) for _ in range(3)]
    stores[0].create("r", "", "a", obj("a"), {})
    assert all(s.revision() == 1 for s in stores)
    for s in stores:
        s.close()


def test_an_unreachable_database_fails_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        PostgresStore("postgresql://postgres@127.0.0.1:1/none", connect_timeout=2)
    assert time.monotonic() - started < 5


def test_revisions_become_visible_in_commit_order(store: PostgresStore) -> None:
    """8 writers create and update while a poller re-reads a window of the log: no revision
    ever appears after a higher one was seen, and every written revision is seen."""
    written: list[int] = []
    written_lock = threading.Lock()
    stop, written_all = threading.Event(), threading.Event()
    late: list[tuple[int, int]] = []
    seen: set[int] = set()

    def write(worker: int) -> None:
        mine = []
        n = 0
        while not stop.is_set():
            row = store.create("r", "ns", f"w{worker}-{n}", obj(f"w{worker}-{n}"), {})
            mine.append(row.revision)
            for change in range(3):
                row = store.update(
                    "r", "ns", row.name, row.revision, obj(row.name, c=str(change)), {}
                )
                mine.append(row.revision)
            n += 1
        with written_lock:
            written.extend(mine)

    def poll() -> None:
        highest = 0
        while True:
            done = written_all.is_set()
            changes, _ = store.changes(max(0, highest - 200), limit=1000)
            for change in changes:
                if change.revision not in seen:
                    if change.revision < highest:
                        late.append((change.revision, highest))
                    seen.add(change.revision)
                    highest = max(highest, change.revision)
            if done and len(changes) < 1000 and highest == store.revision():
                return

    writers = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    poller = threading.Thread(target=poll)
    for thread in [*writers, poller]:
        thread.start()
    time.sleep(2)
    stop.set()
    for thread in writers:
        thread.join(30)
    written_all.set()
    poller.join(30)
    assert len(written) > 500, "the writers hardly wrote"
    assert late == [], f"{len(late)} revisions appeared after a higher one: {late[:5]}"
    assert sorted(written) == list(range(1, len(written) + 1))
    assert seen == set(written)


def test_concurrent_compare_and_swap_loses_no_update(store: PostgresStore) -> None:
    """Threads racing to increment one object, and to delete and recreate another."""
    store.create("r", "", "counter", {"metadata": {"name": "counter"}, "n": 0}, {})
    store.create("r", "", "churn", obj("churn"), {})

    def increment(times: int) -> None:
        done = 0
        while done < times:
            row = store.get("r", "", "counter")
            assert row is not None
            value = int(row.body.split(b'"n":')[1].rstrip(b"}"))
            try:
                store.update(
                    "r",
                    "",
                    "counter",
                    row.revision,
                    {"metadata": {"name": "counter"}, "n": value + 1},
                    {},
                )
                done += 1
            except Conflict:
                pass

    def churn(times: int) -> None:
        for _ in range(times):
            row = store.get("r", "", "churn")
            try:
                if row is None:
                    store.create("r", "", "churn", obj("churn"), {})
                else:
                    store.delete("r", "", "churn", row.revision)
            except (Conflict, NotFound, AlreadyExists):
                pass

    threads = [threading.Thread(target=increment, args=(25,)) for _ in range(4)]
    threads += [threading.Thread(target=churn, args=(50,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    row = store.get("r", "", "counter")
    assert row is not None and row.body.endswith(b'"n":100}')
    changes, _ = store.changes(0, limit=10_000)
    assert [c.revision for c in changes] == list(range(1, store.revision() + 1))


def _writer(url: str, worker: int, count: int) -> None:
    store = PostgresStore(url, pool_size=1)
    for i in range(count):
        store.create("r", "ns", f"w{worker}-{i}", obj(f"w{worker}-{i}"), {})
    store.close()


def test_several_processes_writing_at_once_lose_nothing(postgres_database: str) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_writer, args=(postgres_database, w, 100)) for w in range(4)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
        assert p.exitcode == 0
    store = PostgresStore(postgres_database)
    rows = store.list("r", "ns").rows
    store.close()
    assert len(rows) == 400
    assert sorted(r.revision for r in rows) == list(range(1, 401))


def test_a_second_process_lists_and_watches_what_the_first_writes(postgres_database: str) -> None:
    first, second = PostgresStore(postgres_database), PostgresStore(postgres_database)
    try:
        tailer = Tailer(second)
        row = first.create("r", "ns", "a", obj("a"), {})
        assert [r.name for r in second.list("r", "ns").rows] == ["a"]
        deadline = time.monotonic() + 1.0
        seen: list[Change] = []
        while not seen and time.monotonic() < deadline:
            seen = tailer.read()
            time.sleep(0.01)
        assert [(c.type, c.revision, c.row.body) for c in seen] == [("ADDED", 1, row.body)]
    finally:
        second.close()
        first.close()


def test_documents_of_a_database_numbered_by_the_first_version_keep_being_found(
    postgres_database: str,
) -> None:
    """The first version gave documents a bigserial id beside their key; opening such a
    database drops the column (and its index), keeping the documents."""
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(
            'CREATE TABLE documents (id bigserial PRIMARY KEY, res text COLLATE "C" NOT NULL, '
            'ns text COLLATE "C" NOT NULL, name text COLLATE "C" NOT NULL, kind text NOT NULL, '
            "generation bigint NOT NULL, priority bigint, details text NOT NULL, "
            "words tsvector NOT NULL, UNIQUE (res, ns, name))"
        )
        conn.execute(
            "INSERT INTO documents (res, ns, name, kind, generation, priority, details, words) "
            "VALUES ('r', 'ns', 'a', 'task', 2, 1, 'rebuild shards', "
            "to_tsvector('simple', 'rebuild shards'))"
        )
    store = PostgresStore(postgres_database)
    try:
        (hit,) = store.search(parse("shards"), 10)
        assert (hit.name, hit.generation, hit.snippet) == ("a", 2, "rebuild [shards]")
        store.create("r", "ns", "b", obj("b"), {}, Document("Task", 1, 1, "more shards"))
        assert [h.name for h in store.search(parse("+shards"), 10)] == ["a", "b"]
    finally:
        store.close()
    with psycopg.connect(postgres_database) as conn:
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'documents'"
        ).fetchall()
        assert ("id",) not in columns
