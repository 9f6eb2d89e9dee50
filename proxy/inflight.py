"""At most so many requests in flight, as kube-apiserver's max-in-flight filter has it.

kube keeps two pools per server and counts every request that is not long-running in one of
them: read-only (``get``, ``list``, ``watch``; ``--max-requests-inflight``, 400) and mutating
(every other verb; ``--max-mutating-requests-inflight``, 200). A request that finds its pool
full is answered at once, 429 with ``Retry-After: 1``; nothing waits in a queue. A user in
``system:masters`` is served anyway ("so powerful that they should always get an answer").
0 means no limit, as for kube's flags.

Each gunicorn worker process holds its share of the server's limits (the limit divided by the
workers, rounded up), so the whole server admits what one kube-apiserver would. Health probes
never meet the limit: they are answered before authentication, and kube-apiserver's default
flow control exempts them too (FlowSchema ``probes``). ``apiserver_current_inflight_requests``
is, as kube's, the most slots used in the last second (summed over the workers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from handlers.api.errors import too_many_requests
from handlers.api.users import User
from proxy.authz import MASTERS
from proxy.longrunning import is_long_running
from proxy.metrics import IN_FLIGHT
from proxy.requestinfo import RequestInfo
from proxy.settings import Settings

READ_ONLY_VERBS = frozenset({"get", "list", "watch"})
"""kube's ``nonMutatingRequestVerbs``; a non-resource request's verb is its method, lowercased."""

Release = Callable[[], None]
REPORT_SECONDS = 1.0  # kube's inflightUsageMetricUpdatePeriod


def worker_share(limit: int, workers: int) -> int:
    """One worker's part of a server-wide limit (0 stays 0: no limit)."""
    return -(-limit // max(1, workers)) if limit > 0 else 0


class _Pool:
    """Free slots counted behind a lock (``threading.Semaphore`` is written in Python and
    costs three times as much a request; nothing here ever waits for a slot), and the most
    used since the last report."""

    def __init__(self, size: int, kind: str) -> None:
        self._free = self._size = size
        self._highest = 0
        self._lock = threading.Lock()
        self._gauge = IN_FLIGHT.labels(kind)

    def take(self) -> bool:
        with self._lock:
            if not self._free:
                return False
            self._free -= 1
            self._highest = max(self._highest, self._size - self._free)
            return True

    def give(self) -> None:
        with self._lock:
            self._free += 1

    def report(self) -> None:
        """Publish the most slots used since the last report, and start counting again."""
        with self._lock:
            highest, self._highest = self._highest, self._size - self._free
        self._gauge.set(highest)


class InFlightLimit:
    """The two pools of one worker process."""

    def __init__(self, *, read_only: int, mutating: int) -> None:
        self._read_only = _Pool(read_only, "readOnly") if read_only > 0 else None
        self._mutating = _Pool(mutating, "mutating") if mutating > 0 else None

    def report(self, stop: threading.Event, period: float = REPORT_SECONDS) -> None:
        """Until ``stop`` is set, every ``period``: ``apiserver_current_inflight_requests``
        of each pool, as kube's filter updates it (a gauge written per request would cost
        every request two writes to the metrics file)."""

        def loop() -> None:
            while not stop.wait(period):
                for pool in (self._read_only, self._mutating):
                    if pool is not None:
                        pool.report()

        threading.Thread(target=loop, name="inflight-report", daemon=True).start()

    @classmethod
    def for_worker(cls, settings: Settings) -> InFlightLimit | None:
        """This worker's share of the server's limits; None when both are off."""
        read_only = settings.max_requests_inflight
        mutating = settings.max_mutating_requests_inflight
        if read_only <= 0 and mutating <= 0:
            return None
        return cls(
            read_only=worker_share(read_only, settings.workers),
            mutating=worker_share(mutating, settings.workers),
        )

    def admit(self, info: RequestInfo, user: User) -> Release | None:
        """Take a slot for the request and return how to give it back; None when the request
        takes none (long-running, its pool unlimited, or ``system:masters`` over the limit).
        Raises kube's 429 when the pool is full."""
        if is_long_running(info):
            return None
        pool = self._read_only if info.verb in READ_ONLY_VERBS else self._mutating
        if pool is None:
            return None
        if pool.take():
            return pool.give
        if MASTERS in user.groups:
            return None
        raise too_many_requests()
