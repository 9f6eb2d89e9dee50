"""Where audit events go: JSON lines on stdout, or a file rotated as kube-apiserver's
``--audit-log-path``, ``--audit-log-maxsize``, ``--audit-log-maxbackup`` and
``--audit-log-maxage`` have it (kube writes through lumberjack).

Every gunicorn worker writes the same file. Each opens it ``O_APPEND`` and writes a whole line
in one ``write``, so lines never mix. Rotation is the part processes must agree on: the one
that finds the file full takes a lock on a sibling file, and renames the path only if the path
is still the file it writes; the others find their file full on their next write and reopen
the path. Python's ``RotatingFileHandler`` is not safe across processes (each worker would
rename the file in turn), and ``concurrent-log-handler`` takes a file lock for every line;
here a line costs a ``write`` and an ``fstat``, and the lock is only taken to rotate.
"""

from __future__ import annotations

import calendar
import contextlib
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

log = logging.getLogger("apiserver.audit")

MEGABYTE = 1024 * 1024
DAY_MS = 24 * 60 * 60 * 1000
BACKUP_TIME_FORMAT = "%Y-%m-%dT%H-%M-%S"
"""lumberjack's ``2006-01-02T15-04-05.000`` (milliseconds appended), in UTC."""
_BACKUP_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}")


class Sink(Protocol):
    """Writes one audit event; raises OSError when it cannot."""

    def write(self, event: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


def _line(event: Mapping[str, Any]) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)


def _write_all(fd: int, data: bytes) -> None:
    """One ``write`` nearly always; a short one (a signal, a full pipe) is finished."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class StdoutSink:
    """``--audit-log-path=-``: one line, one write to file descriptor 1 (on a pipe shared by
    the workers, a write is whole up to ``PIPE_BUF``, 4 KiB; longer events may interleave
    there, as any two processes' long lines on one stdout would)."""

    def write(self, event: Mapping[str, Any]) -> None:
        _write_all(1, _line(event))

    def close(self) -> None:
        """stdout stays open."""


def _split_ext(filename: str) -> tuple[str, str]:
    """Go's ``filepath.Ext``: from the last dot (``.hidden`` is all extension)."""
    dot = filename.rfind(".")
    return (filename[:dot], filename[dot:]) if dot >= 0 else (filename, "")


def backup_name(path: str, when_ms: int) -> str:
    """lumberjack's ``name-2006-01-02T15-04-05.000.ext``, beside ``path``; ``when_ms`` is a
    wall-clock time in milliseconds."""
    directory, filename = os.path.split(path)
    prefix, ext = _split_ext(filename)
    seconds, millis = divmod(when_ms, 1000)
    stamp = time.strftime(BACKUP_TIME_FORMAT, time.gmtime(seconds))
    return os.path.join(directory, f"{prefix}-{stamp}.{millis:03d}{ext}")


def _backup_time(filename: str, prefix: str, ext: str) -> int | None:
    """The rotation time (milliseconds) a backup's name holds, or None when it is no backup
    of ours (lumberjack's ``.gz`` ones count too)."""
    for suffix in (ext, f"{ext}.gz"):
        if filename.startswith(prefix) and filename.endswith(suffix):
            stamp = filename[len(prefix) : len(filename) - len(suffix)]
            if _BACKUP_TIME.fullmatch(stamp):
                seconds = calendar.timegm(time.strptime(stamp[:19], BACKUP_TIME_FORMAT))
                return seconds * 1000 + int(stamp[20:])
    return None


def backups(path: str) -> list[tuple[int, str]]:
    """The backups of ``path`` and their rotation times in milliseconds, newest first, by the
    time in their names."""
    directory, filename = os.path.split(path)
    prefix, ext = _split_ext(filename)
    found = []
    for entry in os.scandir(directory or "."):
        when = _backup_time(entry.name, f"{prefix}-", ext)
        if when is not None and entry.is_file():
            found.append((when, entry.path))
    return sorted(found, reverse=True)


def prune(path: str, *, max_backups: int, max_age_days: int, now: float) -> None:
    """lumberjack's clean-up: keep the newest ``max_backups`` (0: all), then drop those
    rotated more than ``max_age_days`` ago (0: never)."""
    found = backups(path)
    doomed = found[max_backups:] if max_backups > 0 else []
    kept = found[:max_backups] if max_backups > 0 else found
    if max_age_days > 0:
        cutoff = int(now * 1000) - max_age_days * DAY_MS
        doomed += [backup for backup in kept if backup[0] < cutoff]
    for _, name in doomed:
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)


def _open(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)


class FileSink:
    """An audit log file shared by processes, rotated at ``max_size_mb`` (0: never)."""

    def __init__(
        self,
        path: str,
        *,
        max_size_mb: float = 100,
        max_backups: int = 100,
        max_age_days: int = 366,
    ) -> None:
        self.path = path
        self.max_bytes = int(max_size_mb * MEGABYTE)
        self.max_backups = max_backups
        self.max_age_days = max_age_days
        self._lock_path = f"{path}.lock"
        self._mutex = threading.Lock()
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        self._fd: int | None = _open(path)

    def write(self, event: Mapping[str, Any]) -> None:
        line = _line(event)
        with self._mutex:
            fd = self._fd if self._fd is not None else self._reopen()
            _write_all(fd, line)
            if self.max_bytes and os.fstat(fd).st_size >= self.max_bytes:
                try:
                    self._rotate(fd)
                except OSError as ex:  # the line is written; the next one tries again
                    log.warning("audit log %s could not be rotated: %s", self.path, ex)

    def _reopen(self) -> int:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = _open(self.path)
        return self._fd

    def _rotate(self, fd: int) -> None:
        """Rename the path aside unless another process did already; then write the path."""
        lock = os.open(self._lock_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._still_ours(fd):
                now = time.time()
                os.rename(self.path, self._next_backup_name(now))
                prune(
                    self.path,
                    max_backups=self.max_backups,
                    max_age_days=self.max_age_days,
                    now=now,
                )
            self._reopen()
        finally:
            os.close(lock)

    def _still_ours(self, fd: int) -> bool:
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return False
        ours = os.fstat(fd)
        return (current.st_dev, current.st_ino) == (ours.st_dev, ours.st_ino)

    def _next_backup_name(self, now: float) -> str:
        """Named after now, or just after the newest backup: a rename never replaces a backup
        (two rotations in a millisecond) and the names keep the order of rotations."""
        newest = backups(self.path)[:1]
        when_ms = max(int(now * 1000), newest[0][0] + 1) if newest else int(now * 1000)
        return backup_name(self.path, when_ms)

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def sink_for(
    path: str, *, max_size_mb: float = 100, max_backups: int = 100, max_age_days: int = 366
) -> Sink:
    """kube's ``--audit-log-path``: ``-`` is stdout, anything else a file."""
    if path == "-":
        return StdoutSink()
    return FileSink(
        path, max_size_mb=max_size_mb, max_backups=max_backups, max_age_days=max_age_days
    )
