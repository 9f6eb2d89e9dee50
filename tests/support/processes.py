"""Processes as Linux's ``/proc`` shows them: a server's gunicorn workers are the master's
children, and a process is told apart from a later one with the same pid by its start time,
so that a test never signals or measures an unrelated process."""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    """A process told apart from any later one with the same pid by its start time."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> Process | None:
        stat = _stat(pid)
        return None if stat is None else cls(pid, stat[2])

    def alive(self) -> bool:
        """Running, or stopped, but not gone nor a zombie."""
        stat = _stat(self.pid)
        return stat is not None and stat[2] == self.started and stat[0] != "Z"

    def state(self) -> str | None:
        stat = _stat(self.pid)
        return stat[0] if stat is not None and stat[2] == self.started else None

    def send(self, signum: int) -> None:
        if self.alive():
            with suppress(ProcessLookupError):
                os.kill(self.pid, signum)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of ``pid``, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)", which may hold spaces
    return fields[0], int(fields[1]), int(fields[19])


def children(parent: Process) -> set[Process]:
    """The live children of ``parent`` (gunicorn's workers when it is the master)."""
    found: set[Process] = set()
    if not parent.alive():
        return found
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == parent.pid and stat[0] != "Z":
                found.add(Process(int(entry.name), stat[2]))
    return found


def memory_kb(pid: int, field: str) -> int:
    """A memory figure of ``pid`` from ``/proc/<pid>/status`` in kB: ``VmRSS`` (resident now)
    or ``VmHWM`` (its peak since the last :func:`reset_peak`)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    """Linux resets a process's VmHWM to its current RSS when "5" is written to clear_refs."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
