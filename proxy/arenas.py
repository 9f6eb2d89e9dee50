"""Fewer malloc arenas for the workers' threads.

glibc gives each new thread an arena of its own until there are eight per core, and memory
freed in one arena serves only that arena's threads. A worker holding a thousand watches
runs a thousand threads, whose TLS handshakes and buffers scatter over sixteen arenas on two
cores: 1,000 watches cost about 15 MB more RSS (medians of 330 and 315 MB) once the workers
took their connections evenly (:mod:`proxy.balance`), so that more threads handshook at once.
Two arenas gave it back, and gets/s did not change (the README's Serving section): Python's
own small objects do not use malloc, and a thread allocates mostly while it holds Python's
lock, so the threads seldom contend for the two.

Called in gunicorn's master before the first fork (``APISERVER_MALLOC_ARENAS``), so every
worker inherits the limit; a C library without glibc's ``mallopt`` keeps its own policy.
"""

from __future__ import annotations

import ctypes

_M_ARENA_MAX = -8  # glibc's malloc.h


def limit(arenas: int) -> bool:
    """Let the threads created from now on share at most ``arenas`` arenas; whether the C
    library took the limit."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
