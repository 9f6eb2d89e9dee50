"""A SQLite get answered from the rows a process read last is exactly as fresh as one read
from the file: another process's commit (another store on the same file stands for it) is
seen by the next get, and nothing is reused across a commit it did not see."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import orjson
import pytest

from store.sql import SQLStore
from store.sqlite import SQLiteStore
from tests.store.contract import obj


def _version(store: SQLiteStore, name: str) -> str | None:
    row = store.get("r", "ns", name)
    return None if row is None else orjson.loads(row.body)["metadata"]["resourceVersion"]


def test_a_get_reads_the_file_only_after_a_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    store.create("r", "ns", "a", obj("a"), {})
    store.create("r", "ns", "b", obj("b"), {})
    reads: list[str] = []
    read = SQLStore.get

    def counted(self: SQLStore, resource: str, namespace: str, name: str) -> object:
        reads.append(name)
        return read(self, resource, namespace, name)

    monkeypatch.setattr(SQLStore, "get", counted)
    assert [_version(store, "a") for _ in range(3)] == ["1", "1", "1"]
    assert reads == ["a"]
    store.update("r", "ns", "b", 2, obj("b", x="1"), {})  # a commit, of another object
    assert _version(store, "a") == "1"
    assert reads == ["a", "a"]
    assert _version(store, "missing") is None
    assert _version(store, "missing") is None  # an absence is not kept: asked each time
    assert reads == ["a", "a", "missing", "missing"]


def test_another_writers_commits_are_seen_by_the_next_get(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    reader, writer = SQLiteStore(path), SQLiteStore(path)
    row = writer.create("r", "ns", "a", obj("a"), {})
    for _ in range(20):
        assert _version(reader, "a") == str(row.revision)
        row = writer.update("r", "ns", "a", row.revision, obj("a", n=str(row.revision)), {})
    assert _version(reader, "a") == str(row.revision)
    writer.delete("r", "ns", "a", row.revision)
    assert _version(reader, "a") is None
    writer.create("r", "ns", "a", obj("a"), {})
    assert _version(reader, "a") == str(writer.revision())


def _update_forever(path: str, rounds: int) -> None:
    store = SQLiteStore(path)
    for _ in range(rounds):
        row = store.get("r", "ns", "a")
        assert row is not None
        store.update("r", "ns", "a", row.revision, obj("a"), {})


def test_a_reader_never_goes_back_while_another_process_writes(tmp_path: Path) -> None:
    """Read after read while a process commits: each get is at least as new as the revision
    the reader knew to be committed before it (read from SQLite itself)."""
    path = str(tmp_path / "s.db")
    reader = SQLiteStore(path)
    reader.create("r", "ns", "a", obj("a"), {})
    writer = multiprocessing.get_context("spawn").Process(target=_update_forever, args=(path, 300))
    writer.start()
    try:
        seen = 0
        while writer.is_alive() or seen < reader.revision():
            committed = reader.revision()
            row = reader.get("r", "ns", "a")
            assert row is not None and row.revision >= committed >= seen
            seen = row.revision
    finally:
        writer.join(60)
    assert writer.exitcode == 0
    assert seen == reader.revision() == 301
