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
from prometheus_client import Counter

V = TypeVar("V")


LOOKUPS = Counter(
    "task_search_review_cache_lookups_total",
    "Answers of TokenReview and SubjectAccessReview asked of the cache, by review and result: "
    "hit, or miss (the cluster was asked).",
    ("review", "result"),
)


class ReviewCache(Generic[V]):
    """``get(key)`` returns ``fetch(key)``, remembered for ``ttl`` seconds; ``review`` names
    the kind of review in the metrics."""

    def __init__(
        self, fetch: Callable[[str], V], *, review: str, ttl: float, maxsize: int = 4096
    ) -> None:
        cache: cachetools.TTLCache[str, V] = cachetools.TTLCache(maxsize=maxsize, ttl=ttl)
        condition = threading.Condition(threading.RLock())
        self._cached = cachetools.cached(cache, condition=condition)(self._fetch)
        self._ask = fetch
        self._hits, self._misses = LOOKUPS.labels(review, "hit"), LOOKUPS.labels(review, "miss")
        self._asked = threading.local()

    def get(self, key: str) -> V:
        self._asked.now = False
        try:
            return self._cached(key)
        finally:
            (self._misses if self._asked.now else self._hits).inc()

    def _fetch(self, key: str) -> V:
        self._asked.now = True
        return self._ask(key)
