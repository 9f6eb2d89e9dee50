"""The compactor's report: each compaction is a JSON log line with what it removed and how
long it took, for a log pipeline to chart."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from proxy.jsonlog import JsonFormatter
from store import compactor
from store.sqlite import SQLiteStore
from tests.store.contract import obj


def compactor_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The store's log records: a thread another test left running may log meanwhile."""
    return [record for record in caplog.records if record.name == "apiserver.store"]


def test_a_compaction_is_logged_with_its_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    for n in range(5):
        store.create("r", "ns", f"o{n}", obj(f"o{n}"), {})
    monkeypatch.setattr(compactor, "MIN_AGE_SECONDS", 0.0)
    monkeypatch.setattr(compactor, "MIN_REVISIONS", 2)
    with caplog.at_level(logging.INFO, logger="apiserver.store"):
        done = compactor.compact_and_report(store)
    assert done is not None and done.revision == 3
    (record,) = compactor_records(caplog)
    line = orjson.loads(JsonFormatter().format(record))
    assert line["message"].startswith("compacted the change log to revision 3: 3 entries removed")
    assert (line["revision"], line["removed"]) == (3, 3) and line["seconds"] >= 0


def test_a_failed_compaction_is_logged_and_the_compactor_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    store.close()
    (tmp_path / "s.db").unlink()
    (tmp_path / "s.db").mkdir()  # the file is gone: the next connection cannot open it
    with caplog.at_level(logging.INFO, logger="apiserver.store"):
        assert compactor.compact_and_report(store) is None
    (record,) = compactor_records(caplog)
    assert record.message == "compaction failed" and record.exc_info is not None
