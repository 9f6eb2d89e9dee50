"""Who did the work: CPU of the server's processes and of the host, connections per worker.

With server and clients on the same two cores, a throughput figure means little without
knowing who used the CPU: the server, the load generator, someone else, or nobody (a lock or
a sleep). And gunicorn workers accept keep-alive connections by chance, so with 8 clients
one worker may get most of them; counting them per worker explains run-to-run variance.
Everything is read from ``/proc`` (Linux); elsewhere the figures are simply missing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_ESTABLISHED = "01"  # TCP state in /proc/net/tcp


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative CPU seconds at one instant, and each worker's open connections."""

    at: float
    server: float
    host: float
    workers: dict[int, float]
    connections: dict[int, int]


@dataclass(frozen=True, slots=True)
class Worker:
    """One gunicorn worker over a window: cores used and client connections held."""

    cores: float
    connections: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Average cores busy between two samples; workers busiest first."""

    server: float
    host: float
    workers: tuple[Worker, ...]


def _ticks() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def _stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of one process, or None if it is gone."""
    try:
        text = (_PROC / pid / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _ticks()


def tree_seconds(root: int) -> tuple[float, dict[int, float]]:
    """CPU seconds used so far by ``root`` and its descendants, and by each child alone.

    For gunicorn: the master and its workers in total, and each worker.
    """
    parents: dict[int, int] = {}
    seconds: dict[int, float] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(entry.name)) is not None:
            parents[int(entry.name)], seconds[int(entry.name)] = stat
    total = 0.0
    for pid, used in seconds.items():
        ancestor = pid
        while ancestor not in (root, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor == root:
            total += used
    children = {pid: seconds[pid] for pid, parent in parents.items() if parent == root}
    return total, children


def _established(port: int | None = None) -> set[str]:
    """Socket inodes of established TCP connections (IPv4 and IPv6), only those whose local
    port is ``port`` if given: a server's accepted connections, not those it opened itself
    (to a cluster, say)."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _ESTABLISHED and (
                port is None or int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    return inodes


def connections(pid: int, established: set[str]) -> int:
    """Established TCP connections held open by one process."""
    count = 0
    try:
        fds = list((_PROC / str(pid) / "fd").iterdir())
    except OSError:
        return 0
    for fd in fds:
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in established:
            count += 1
    return count


def host_seconds() -> float:
    """CPU seconds the host spent busy (not idle, not waiting for I/O), all cores."""
    fields = [int(f) for f in (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / _ticks()


def sample(root: int, port: int | None = None) -> Sample | None:
    """A sample now, or None where ``/proc`` is unavailable; connections are those accepted
    on ``port`` when given, else all established ones."""
    try:
        total, workers = tree_seconds(root)
        established = _established(port)
        held = {pid: connections(pid, established) for pid in workers}
        return Sample(time.monotonic(), total, host_seconds(), workers, held)
    except (OSError, ValueError, IndexError):
        return None


def usage(before: Sample | None, after: Sample | None) -> Usage | None:
    """Cores busy on average between two samples; connections as held at the first."""
    if before is None or after is None or after.at <= before.at:
        return None
    span = after.at - before.at
    workers = sorted(
        (
            Worker((used - before.workers.get(pid, 0.0)) / span, before.connections.get(pid, 0))
            for pid, used in after.workers.items()
        ),
        key=lambda w: w.cores,
        reverse=True,
    )
    return Usage(
        (after.server - before.server) / span, (after.host - before.host) / span, tuple(workers)
    )
