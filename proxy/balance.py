"""Spread connections evenly over the workers: a worker accepts only while no live peer holds
fewer connections than it does.

All workers accept from one listening socket, and the kernel gives each new connection to
whichever worker's poller wakes first. With keep-alive clients (the aggregator's pool, the
bench's eight), a connection stays where it landed: seven of eight on one worker left that
worker's core saturated and the other idle, and gets/s varied 1.7x between runs. So each
worker publishes how many connections it holds on a board shared by the master's workers
(an anonymous shared mapping made before the first fork, one slot per worker) and stops
listening while a peer holds fewer: the least loaded always accepts, so nothing waits on a
busier worker's bound, and the split of simultaneous connections is even to within one.

A peer counts only while its heartbeat is recent: a worker that is gone (its slot is
cleared when the master reaps it) or hung (the master will kill it) must not stop the
others accepting. Imported by gunicorn's master (the config's hooks), so it opens nothing
but the mapping.
"""

from __future__ import annotations

import mmap
import time
from typing import Any

_FIELDS = 2  # per slot: connections held, monotonic time of the last heartbeat
_FRESH_SECONDS = 2.0  # a gthread worker loops at least every second while alive

_board: Board | None = None


class Board:
    """The workers' slots in memory shared across ``fork``: each worker writes its own,
    reads the others'. A slot is one 8-byte store per field, which a reader sees whole."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._memory = mmap.mmap(-1, slots * _FIELDS * 8)
        self._cells = memoryview(self._memory).cast("d")

    def claim(self, taken: set[int]) -> int | None:
        """A free slot for a worker about to be forked (none left: it will not balance)."""
        for slot in range(self.slots):
            if slot not in taken:
                self.clear(slot)
                return slot
        return None

    def clear(self, slot: int) -> None:
        """The slot of a worker that is gone: no longer a peer."""
        self._cells[slot * _FIELDS] = 0.0
        self._cells[slot * _FIELDS + 1] = 0.0

    def publish(self, slot: int, connections: int) -> None:
        self._cells[slot * _FIELDS] = float(connections)
        self._cells[slot * _FIELDS + 1] = time.monotonic()

    def least_peer(self, slot: int) -> float:
        """The fewest connections a live peer of ``slot`` holds (infinity if none is live)."""
        cells = self._cells.tolist()
        oldest = time.monotonic() - _FRESH_SECONDS
        least = float("inf")
        for peer in range(self.slots):
            if peer != slot and cells[peer * _FIELDS + 1] > oldest:
                least = min(least, cells[peer * _FIELDS])
        return least


def open_board(workers: int) -> Board:
    """The master's board, made before any fork (room for workers added by TTIN)."""
    global _board
    _board = Board(max(8, 2 * workers))
    return _board


def board() -> Board | None:
    """The board this process inherited from its master, if the config made one."""
    return _board


def assign(server: Any, worker: Any) -> None:
    """gunicorn's ``pre_fork``: give the worker about to be forked a free slot."""
    if _board is not None:
        taken = {getattr(w, "board_slot", None) for w in server.WORKERS.values()}
        worker.board_slot = _board.claim({slot for slot in taken if slot is not None})


def release(worker: Any) -> None:
    """gunicorn's ``child_exit``: the worker's slot is free and it is no longer a peer."""
    slot = getattr(worker, "board_slot", None)
    if _board is not None and slot is not None:
        _board.clear(slot)
