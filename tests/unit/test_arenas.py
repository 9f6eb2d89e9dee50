"""The arena limit the master sets before forking: threads started after it share two of
glibc's malloc arenas, where they would otherwise each take one (eight per core at most)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

_CHILD = """
import ctypes, sys, threading
from proxy import arenas

if sys.argv[1] == "limit":
    assert arenas.limit(2)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
together = threading.Barrier(6)

def allocate() -> None:
    libc.malloc(4096)
    together.wait()  # every thread alive at once: none can hand its arena to another

threads = [threading.Thread(target=allocate) for _ in range(6)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
out = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, out)
libc.fclose(out)
"""


def _arenas_after_six_threads(tmp_path: Path, mode: str) -> int:
    report = tmp_path / f"{mode}.xml"
    subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(report)],
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    return len(re.findall(r'<heap nr="\d+">', report.read_text()))


def test_threads_share_the_limited_arenas(tmp_path: Path) -> None:
    assert _arenas_after_six_threads(tmp_path, "limit") <= 2


def test_without_the_limit_each_thread_takes_an_arena(tmp_path: Path) -> None:
    """The control: the count above is the limit's doing, not this machine's."""
    assert _arenas_after_six_threads(tmp_path, "default") > 2
