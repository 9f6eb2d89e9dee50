"""The revision last committed to one SQLite database, shared by every process that opens it
through a small mapped file beside it, so that a reader can tell without asking SQLite that
nothing was committed since it last read.

Asking SQLite costs a get more than its instructions: the driver lets go of Python's lock
around every statement, and in a worker whose threads serve several connections each of those
releases hands the lock to another thread and back, which cost a get a fifth of its CPU.

Two numbers, each an 8-byte store seen whole: a writer sets ``started`` to its transaction's
revision while it holds SQLite's write lock, before ``COMMIT``, and ``finished`` to the same
after. ``started`` therefore only grows, in commit order, and changes before any commit can be
seen. The state is *stable at g* when both are ``g``: a reader that found it so before reading
the database may reuse what it read while it is still stable at ``g``, because a commit its
read did not see set ``started`` past ``g`` before it could be seen, and ``started`` never
comes back. A writer that fails between the two, or finishes after a later one, leaves the
numbers unequal: nothing is reused until the next write makes them equal again.
"""

from __future__ import annotations

import mmap
import os

_STARTED, _FINISHED = 0, 1


class Generation:
    """The published revisions of one database (see the module's docstring)."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < 16:
                os.ftruncate(fd, 16)
            self._map = mmap.mmap(fd, 16)
        finally:
            os.close(fd)
        self._cells = memoryview(self._map).cast("q")

    def stable(self) -> int | None:
        """The revision it is stable at, or None while a write is under way."""
        started = self._cells[_STARTED]
        return int(started) if self._cells[_FINISHED] == started else None

    def starting(self, revision: int) -> None:
        """Holding the write lock, before ``COMMIT``."""
        self._cells[_STARTED] = revision

    def finished(self, revision: int) -> None:
        """After ``COMMIT``."""
        self._cells[_FINISHED] = revision

    def reset(self, revision: int) -> None:
        """Holding the write lock, at the database's last ``revision``: a file left by
        another database (of higher revisions) must not let revisions come back."""
        self._cells[_STARTED] = revision
        self._cells[_FINISHED] = revision
