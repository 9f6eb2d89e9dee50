"""The embedded store: revisions, optimistic concurrency, history, compaction, many writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

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
    contract.compaction_expires_old_revisions_only,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_store_contract(check: Callable[[SQLiteStore], None], tmp_path: Path) -> None:
    check(SQLiteStore(str(tmp_path / "s.db")))


def test_data_survives_reopening(tmp_path: Path) -> None:
    contract.data_survives_reopening(lambda: SQLiteStore(str(tmp_path / "s.db")))


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
