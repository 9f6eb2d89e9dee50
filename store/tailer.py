"""Reads the change log in revision order, from where it last stopped.

One tailer per process (driven by the watch fan-out) means one log query per tick for all
of that process's watches, never one per watcher per event.
"""

from __future__ import annotations

from store import BATCH, Change, Store

MAX_READ = 10 * BATCH  # changes per read: a long backlog is taken in several ticks


class Tailer:
    """The log of ``store`` after the revision current when the tailer was made."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.revision = store.revision()

    def read(self) -> list[Change]:
        """The changes committed since the last read (at most ``MAX_READ``), oldest first."""
        out: list[Change] = []
        while len(out) < MAX_READ:
            changes, _ = self._store.changes(self.revision, limit=BATCH)
            if not changes:
                break
            out.extend(changes)
            self.revision = changes[-1].revision
            if len(changes) < BATCH:
                break
        return out
