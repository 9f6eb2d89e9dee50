"""Memory of a gunicorn server: resident set of the master and each worker, from ``/proc``.

RSS counts pages shared by forked processes once per process, so the sum over master and
workers overstates what the server costs the host; PSS (proportional set size, from
``smaps_rollup``) splits shared pages between their users and sums to the true figure. The
targets are stated in RSS, the larger and cruder of the two; both are reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class Memory:
    """Bytes resident in the server's processes: each process's RSS, and their sums."""

    rss: dict[int, int]  # pid -> bytes; the master first
    pss: int | None = None  # bytes; None when not read or unavailable

    @property
    def total(self) -> int:
        """RSS summed over master and workers."""
        return sum(self.rss.values())


def _field(path: Path, name: str) -> int | None:
    """A ``Name:   123 kB`` line of a ``/proc`` file, in bytes."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def processes(root: int) -> list[int]:
    """``root`` and its direct children (gunicorn: the master and its workers)."""
    found = [root]
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == root:
            found.append(int(entry.name))
    return found


def sample(root: int, *, pss: bool = False) -> Memory | None:
    """RSS of ``root`` and its children now (and their PSS if asked); None without ``/proc``."""
    try:
        pids = processes(root)
    except OSError:
        return None
    rss = {pid: size for pid in pids if (size := _field(_PROC / str(pid) / "status", "VmRSS:"))}
    if not rss:
        return None
    proportional = None
    if pss:
        sizes = [_field(_PROC / str(pid) / "smaps_rollup", "Pss:") for pid in rss]
        proportional = sum(s for s in sizes if s is not None) if all(sizes) else None
    return Memory(rss, proportional)
