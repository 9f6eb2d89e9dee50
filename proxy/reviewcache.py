"""A TTL cache of review answers in which concurrent misses for one key make one call.

kube's delegated servers cache TokenReview and SubjectAccessReview answers for 10 s; a burst
of identical requests (a controller's relist, a kubectl loop) must not become a burst of
reviews. cachetools' ``condition`` makes the callers of a missing key wait for the first one.
Failures are not cached: the next caller asks again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import cachetools

V = TypeVar("V")


class ReviewCache(Generic[V]):
    """``get(key)`` returns ``fetch(key)``, remembered for ``ttl`` seconds."""

    def __init__(self, fetch: Callable[[str], V], *, ttl: float, maxsize: int = 4096) -> None:
        cache: cachetools.TTLCache[str, V] = cachetools.TTLCache(maxsize=maxsize, ttl=ttl)
        condition = threading.Condition(threading.RLock())
        self.get: Callable[[str], V] = cachetools.cached(cache, condition=condition)(fetch)
