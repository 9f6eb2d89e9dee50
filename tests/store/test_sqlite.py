"""The embedded store: revisions, optimistic concurrency, history, compaction, many writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from store import FIELD, LABEL, New, Term
from store.fulltext import Document
from store.search import parse
from store.sql import Statements
from store.sqlite import SQLiteStore
from tests.store import contract
from tests.store.contract import obj

CHECKS = [
    contract.every_write_takes_the_next_revision_and_is_logged,
    contract.changes_can_be_read_for_one_resource,
    contract.optimistic_concurrency,
    contract.get_returns_the_stored_row,
    contract.list_is_in_byte_order_and_scoped,
    contract.list_filters_across_batches,
    contract.list_at_an_old_revision_rebuilds_that_state,
    contract.paging_under_writes_returns_each_object_once_as_it_was,
    contract.narrowed_lists_follow_every_write,
    contract.a_load_is_many_creates_all_or_nothing,
    contract.search_documents_follow_every_write,
    contract.documents_of_objects_kept_elsewhere_take_no_revision,
    contract.one_process_leads_a_role_at_a_time,
    contract.paging_through_tied_hits_returns_each_once,
    contract.compaction_expires_old_revisions_only,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_store_contract(check: Callable[[SQLiteStore], None], tmp_path: Path) -> None:
    check(SQLiteStore(str(tmp_path / "s.db")))


def test_data_survives_reopening(tmp_path: Path) -> None:
    contract.data_survives_reopening(lambda: SQLiteStore(str(tmp_path / "s.db")))


@pytest.mark.parametrize("namespace", [None, "ns"], ids=["cluster-wide", "namespaced"])
@pytest.mark.parametrize("at", [None, 5], ids=["current", "historical"])
@pytest.mark.parametrize(
    "narrow",
    [None, Term(LABEL, "tag", ("needle",)), Term(FIELD, "spec.priority", ("1",))],
    ids=["all", "label", "field"],
)
def test_a_page_walks_the_indexes_in_key_order_and_sorts_nothing(
    tmp_path: Path, namespace: str | None, at: int | None, narrow: Term | None
) -> None:
    """A page must cost what it returns: each statement searches its table through an index
    in key order, with no temporary sort of what follows the cursor, so LIMIT stops the walk
    (the objects, or the terms index then each object by key; the log for an older state)."""
    path = tmp_path / "s.db"
    SQLiteStore(str(path)).close()
    statements = Statements("?").page("r", namespace, at, ("ns", "o0500"), 500, narrow)
    with sqlite3.connect(path) as conn:
        for query, params in statements:
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", params)]
            assert not [s for s in plan if "TEMP B-TREE" in s or s.startswith("SCAN")], plan
            assert all(s.startswith("SEARCH") for s in plan), plan
    plans = " ".join(
        row[3]
        for query, params in statements
        for row in sqlite3.connect(path).execute(f"EXPLAIN QUERY PLAN {query}", params)
    )
    assert ("SEARCH t USING PRIMARY KEY" in plans) == (narrow is not None), plans
    assert ("SEARCH log USING INDEX log_key" in plans) == (at is not None), plans


@pytest.mark.parametrize("resource", [None, "r"], ids=["all", "one-resource"])
def test_changes_walk_the_log_by_revision_and_seek_what_each_made(
    tmp_path: Path, resource: str | None
) -> None:
    """A watch's read of the log costs what it returns: the log by revision from the watch's,
    with no sort (not the resource's entries by key), and for each entry two seeks (its key's
    next change, the object)."""
    path = tmp_path / "s.db"
    SQLiteStore(str(path)).close()
    query, params = Statements("?").changes(5, resource, 500)
    with sqlite3.connect(path) as conn:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", params)]
    assert plan[0] == "SEARCH l USING INTEGER PRIMARY KEY (rowid>?)", plan
    assert not [s for s in plan if "TEMP B-TREE" in s or s.startswith("SCAN")], plan


def test_a_term_that_names_several_values_sorts_only_its_matches(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(str(path)).close()
    ((query, params),) = Statements("?").page(
        "r", "ns", None, ("ns", ""), 500, Term(LABEL, "tag", ("a", "b"))
    )
    with sqlite3.connect(path) as conn:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", params)]
    assert plan[0].startswith(
        "SEARCH t USING PRIMARY KEY (res=? AND source=? AND key=? AND value=?"
    )
    assert "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY" in plan  # of the matches only


def test_compaction_keeps_no_writer_waiting(tmp_path: Path) -> None:
    contract.compaction_keeps_no_writer_waiting(SQLiteStore(str(tmp_path / "s.db")))


def test_the_file_shrinks_to_its_live_size_after_mass_deletes(tmp_path: Path) -> None:
    """Deleting 90% of the objects then compacting leaves a file within 1.5 times the size of
    one holding only the survivors (compacted the same way)."""
    store = SQLiteStore(str(tmp_path / "s.db"))
    contract.fill(store, "r", 20_000)
    full = _file_bytes(store, tmp_path / "s.db")
    for row in store.list("r", "ns").rows:
        if int(row.name[1:]) % 10:
            store.delete("r", "ns", row.name, row.revision)
    survivors = SQLiteStore(str(tmp_path / "live.db"))
    survivors.load(
        "r",
        [New("ns", r.name, orjson.loads(r.body), r.fields()) for r in store.list("r", "ns").rows],
    )
    live = _file_bytes(survivors, tmp_path / "live.db")
    shrunk = _file_bytes(store, tmp_path / "s.db")
    assert live < full / 5 and shrunk <= 1.5 * live, (full, shrunk, live)


def test_a_file_made_before_incremental_vacuum_is_converted_keeping_its_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA auto_vacuum=NONE")
        conn.execute("CREATE TABLE kept (v TEXT)")
        conn.execute("INSERT INTO kept VALUES ('x')")
    SQLiteStore(str(path)).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # INCREMENTAL
        assert conn.execute("SELECT v FROM kept").fetchall() == [("x",)]


def _file_bytes(store: SQLiteStore, path: Path) -> int:
    """The size of the database and its WAL after a compaction of the whole log, done twice
    (the second finds no write since the first: the store is idle and empties the WAL)."""
    for _ in range(2):
        store.compact(min_age_seconds=0, min_revisions=0)
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def test_writes_mark_documents_pending_and_a_search_or_a_compaction_indexes_them(
    tmp_path: Path,
) -> None:
    """FTS5 writes a segment at the end of each statement that changes it, so writes only
    mark their documents pending; the next search (or compaction) indexes them all at once."""
    path = tmp_path / "s.db"
    store = SQLiteStore(str(path))

    def pending() -> int:
        with sqlite3.connect(path) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM documents_pending").fetchone()[0])

    def indexed() -> int:
        with sqlite3.connect(path) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM documents_fts").fetchone()[0])

    a = store.create("r", "ns", "a", obj("a"), {}, Document("Task", 1, 1, "rebuild shards"))
    store.create("r", "ns", "b", obj("b"), {}, Document("Task", 1, 1, "compare shards"))
    assert (pending(), indexed()) == (2, 0)
    assert [h.name for h in store.search(parse("+shards +rebuild"), 10)] == ["a"]
    assert (pending(), indexed()) == (0, 2)
    a = store.update("r", "ns", "a", a.revision, obj("a"), {}, Document("Task", 2, 1, "call"))
    store.update("r", "ns", "a", a.revision, obj("a"), {}, Document("Task", 3, 1, "page"))
    assert pending() == 1  # pending once, however often written
    store.compact(min_age_seconds=3600, min_revisions=0)
    assert (pending(), indexed()) == (0, 2)
    assert [h.name for h in store.search(parse("shards"), 10)] == ["b"]


def test_log_rows_carry_type_and_previous_revision(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    a = store.create("r", "ns", "a", obj("a"), {})
    b = store.create("r", "ns", "b", obj("b"), {})
    store.update("r", "ns", "a", a.revision, obj("a", x="1"), {})
    store.delete("r", "ns", "b", b.revision)
    with sqlite3.connect(tmp_path / "s.db") as conn:
        log = conn.execute("SELECT rev, type, prev_rev FROM log ORDER BY rev").fetchall()
    assert log == [(1, 0, 0), (2, 0, 0), (3, 1, 1), (4, 2, 2)]


def _writer(path: str, worker: int, count: int) -> None:
    store = SQLiteStore(path)
    for i in range(count):
        store.create("r", "ns", f"w{worker}-{i}", obj(f"w{worker}-{i}"), {})


def test_several_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    SQLiteStore(path).close()
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_writer, args=(path, w, 100)) for w in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
        assert p.exitcode == 0
    rows = SQLiteStore(path).list("r", "ns").rows
    assert len(rows) == 400
    assert sorted(r.revision for r in rows) == list(range(1, 401))
