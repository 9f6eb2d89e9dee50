"""The embedded store: revisions, optimistic concurrency, history, compaction, many writers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import orjson
import pytest

from store import AlreadyExists, Conflict, Expired, NotFound
from store.sqlite import SQLiteStore


def obj(name: str, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"n": name}}


def test_every_write_takes_the_next_revision_and_is_logged(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    a = store.create("r", "ns", "a", obj("a"), {})
    b = store.create("r", "ns", "b", obj("b"), {})
    a2 = store.update("r", "ns", "a", a.revision, obj("a", x="1"), {})
    gone = store.delete("r", "ns", "b", b.revision)
    assert [a.revision, b.revision, a2.revision, gone.revision] == [1, 2, 3, 4]
    assert store.revision() == 4
    assert orjson.loads(a2.body)["metadata"]["resourceVersion"] == "3"
    conn = store._connection()
    log = conn.execute("SELECT rev, type, prev_rev FROM log ORDER BY rev").fetchall()
    assert log == [(1, 0, 0), (2, 0, 0), (3, 1, 1), (4, 2, 2)]


def test_optimistic_concurrency(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    a = store.create("r", "", "a", obj("a"), {})
    with pytest.raises(AlreadyExists):
        store.create("r", "", "a", obj("a"), {})
    store.update("r", "", "a", a.revision, obj("a", v="2"), {})
    with pytest.raises(Conflict):
        store.update("r", "", "a", a.revision, obj("a", v="3"), {})
    with pytest.raises(Conflict):
        store.delete("r", "", "a", a.revision)
    with pytest.raises(NotFound):
        store.delete("r", "", "missing", 1)
    assert store.revision() == 2  # failed writes burn no revision


def test_list_at_an_old_revision_rebuilds_that_state(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    rows = [store.create("r", "ns", n, obj(n), {}) for n in ("a", "b", "c")]
    at = store.revision()
    store.update("r", "ns", "a", rows[0].revision, obj("a", changed="yes"), {})
    store.delete("r", "ns", "b", rows[1].revision)
    store.create("r", "ns", "d", obj("d"), {})
    old = store.list("r", "ns", revision=at)
    assert [(r.name, r.revision) for r in old.rows] == [("a", 1), ("b", 2), ("c", 3)]
    assert old.rows[0].labels() == {}
    assert [r.name for r in store.list("r", "ns").rows] == ["a", "c", "d"]
    page = store.list("r", "ns", revision=at, limit=2)
    assert ([r.name for r in page.rows], page.resume_after) == (["a", "b"], ("ns", "b"))
    rest = store.list("r", "ns", revision=at, after=page.resume_after, limit=2)
    assert ([r.name for r in rest.rows], rest.resume_after) == (["c"], None)


def test_compaction_expires_old_revisions_only(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    for n in range(5):
        store.create("r", "", f"o{n}", obj(f"o{n}"), {})
    assert store.compact(min_age_seconds=3600, min_revisions=0) == 0  # nothing old enough
    assert store.compact(min_age_seconds=0, min_revisions=2) == 3
    with pytest.raises(Expired):
        store.list("r", None, revision=2)
    assert len(store.list("r", None, revision=3).rows) == 3


def test_data_survives_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    first = SQLiteStore(path)
    first.create("r", "ns", "keep", obj("keep"), {"spec.n": "keep"})
    first.close()
    again = SQLiteStore(path)
    row = again.get("r", "ns", "keep")
    assert row is not None and row.fields() == {"spec.n": "keep"}
    assert again.revision() == 1


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
