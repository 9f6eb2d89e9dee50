"""Audit lines reach stdout or a file whole, and the file rotates as kube's
``--audit-log-max*`` flags say while several processes write it: no line is cut, mixed or
lost, backups are named as lumberjack names them and pruned by count and by age."""

from __future__ import annotations

import multiprocessing
import stat
import threading
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import orjson
import pytest

from proxy.audit.sink import MEGABYTE, FileSink, StdoutSink, backup_name, backups, sink_for

PAD = "x" * 200
LINE_BYTES = len(orjson.dumps({"writer": 0, "seq": 0, "pad": PAD})) + 8


def _write_lines(
    path: str, writer: int, count: int, max_size_mb: float, max_backups: int, start: Barrier
) -> None:
    """One worker process: its own sink on the shared path, as each gunicorn worker has."""
    sink = FileSink(path, max_size_mb=max_size_mb, max_backups=max_backups, max_age_days=0)
    start.wait()
    for seq in range(count):
        sink.write({"writer": writer, "seq": seq, "pad": PAD})
    sink.close()


def run_writers(
    path: Path, *, writers: int, count: int, max_size_mb: float, max_backups: int
) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(writers)
    procs = [
        ctx.Process(
            target=_write_lines, args=(str(path), w, count, max_size_mb, max_backups, start)
        )
        for w in range(writers)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0


def lines_of(files: list[Path]) -> list[dict[str, Any]]:
    found = []
    for file in files:
        raw = file.read_bytes()
        assert raw.endswith(b"\n") or not raw
        found += [orjson.loads(line) for line in raw.splitlines()]
    return found


def test_two_or_more_processes_rotate_one_file_without_losing_or_cutting_a_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.log"
    max_size_mb, writers, count = 16 * 1024 / MEGABYTE, 4, 400
    run_writers(path, writers=writers, count=count, max_size_mb=max_size_mb, max_backups=0)
    rotated = [Path(name) for _, name in backups(str(path))]
    assert len(rotated) >= 10
    records = lines_of([path, *rotated])
    assert len(records) == writers * count
    assert {(r["writer"], r["seq"]) for r in records} == {
        (w, s) for w in range(writers) for s in range(count)
    }
    assert all(r["pad"] == PAD for r in records)
    for file in rotated:
        size = file.stat().st_size
        assert int(max_size_mb * MEGABYTE) <= size < max_size_mb * MEGABYTE + writers * LINE_BYTES
    for w in range(writers):  # each process's lines stay in its order across the files
        seqs = [r["seq"] for r in lines_of([*reversed(rotated), path]) if r["writer"] == w]
        assert seqs == sorted(seqs)


def test_processes_rotating_together_keep_max_backups(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    run_writers(path, writers=2, count=300, max_size_mb=8 * 1024 / MEGABYTE, max_backups=3)
    rotated = backups(str(path))
    assert len(rotated) == 3
    assert all(isinstance(r, dict) for r in lines_of([path, *(Path(n) for _, n in rotated)]))


def test_threads_of_one_process_share_a_sink(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    sink = FileSink(str(path), max_size_mb=4 * 1024 / MEGABYTE, max_backups=0, max_age_days=0)

    def write(writer: int) -> None:
        for seq in range(200):
            sink.write({"writer": writer, "seq": seq, "pad": PAD})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.close()
    files = [path, *(Path(n) for _, n in backups(str(path)))]
    assert len(lines_of(files)) == 800


def test_a_sink_whose_file_another_rotated_reopens_the_path(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    limit = 2 * 1024 / MEGABYTE
    first = FileSink(str(path), max_size_mb=limit, max_backups=0, max_age_days=0)
    second = FileSink(str(path), max_size_mb=limit, max_backups=0, max_age_days=0)
    while not backups(str(path)):
        first.write({"from": "first", "pad": PAD})
    second.write({"from": "second", "n": 1})  # lands in the rotated file, which is full
    second.write({"from": "second", "n": 2})
    [(_, rotated)] = backups(str(path))
    assert lines_of([Path(rotated)])[-1] == {"from": "second", "n": 1}
    assert lines_of([path]) == [{"from": "second", "n": 2}]
    first.close()
    second.close()


def test_a_rotation_never_replaces_a_backup_of_the_same_millisecond(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0)
    path = tmp_path / "audit.log"
    sink = FileSink(str(path), max_size_mb=1 / MEGABYTE, max_backups=0, max_age_days=0)
    for n in range(3):
        sink.write({"n": n})
    names = sorted(Path(name).name for _, name in backups(str(path)))
    assert names == [
        "audit-2023-11-14T22-13-20.000.log",
        "audit-2023-11-14T22-13-20.001.log",
        "audit-2023-11-14T22-13-20.002.log",
    ]
    sink.close()


def test_backups_are_named_as_lumberjack_names_them() -> None:
    when = 1_478_284_200_123  # 2016-11-04 18:30:00.123 UTC
    assert backup_name("/var/log/audit.log", when) == "/var/log/audit-2016-11-04T18-30-00.123.log"
    assert backup_name("/var/log/audit", when) == "/var/log/audit-2016-11-04T18-30-00.123"
    assert backup_name("a.b.json", when) == "a.b-2016-11-04T18-30-00.123.json"


def old_backup(path: Path, days_ago: float) -> Path:
    when_ms = int((time.time() - days_ago * 86400) * 1000)
    backup = Path(backup_name(str(path), when_ms))
    backup.write_text("{}\n")
    return backup


def test_backups_older_than_max_age_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    ancient, recent = old_backup(path, 10), old_backup(path, 0.5)
    unrelated = [tmp_path / "audit-notes.log", tmp_path / "other-2016-11-04T18-30-00.000.log"]
    for file in unrelated:
        file.write_text("keep\n")
    sink = FileSink(str(path), max_size_mb=1 / MEGABYTE, max_backups=0, max_age_days=7)
    sink.write({"n": 1})
    sink.close()
    assert not ancient.exists()
    assert recent.exists()
    assert all(file.exists() for file in unrelated)
    assert len(backups(str(path))) == 2


def test_only_the_newest_max_backups_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    existing = [old_backup(path, days) for days in (5, 4, 3, 2, 1)]
    sink = FileSink(str(path), max_size_mb=1 / MEGABYTE, max_backups=2, max_age_days=0)
    sink.write({"n": 1})
    sink.close()
    kept = [Path(name) for _, name in backups(str(path))]
    assert len(kept) == 2
    assert kept[1] == existing[-1]
    assert lines_of([kept[0]]) == [{"n": 1}]


def test_max_size_zero_never_rotates(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    sink = FileSink(str(path), max_size_mb=0, max_backups=1, max_age_days=1)
    for n in range(100):
        sink.write({"n": n, "pad": PAD})
    sink.close()
    assert backups(str(path)) == []
    assert len(lines_of([path])) == 100


def test_the_file_and_its_directory_are_private_as_kube_makes_them(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.log"
    sink = sink_for(str(path), max_size_mb=1, max_backups=1, max_age_days=1)
    assert isinstance(sink, FileSink)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    sink.write({"n": 1})
    sink.close()
    sink.write({"n": 2})  # a closed sink opens the path again
    sink.close()
    assert lines_of([path]) == [{"n": 1}, {"n": 2}]


def test_dash_means_stdout_one_line_per_event(capfd: pytest.CaptureFixture[str]) -> None:
    sink = sink_for("-", max_size_mb=1, max_backups=1, max_age_days=1)
    assert isinstance(sink, StdoutSink)
    sink.write({"kind": "Event", "stage": "RequestReceived"})
    sink.write({"kind": "Event", "stage": "ResponseComplete"})
    sink.close()
    out = capfd.readouterr().out
    assert out == (
        '{"kind":"Event","stage":"RequestReceived"}\n{"kind":"Event","stage":"ResponseComplete"}\n'
    )
