"""The request timeout, as kube-apiserver's: every request that is not long-running gets a
deadline, ``--request-timeout`` (60 s) after it arrived or the client's shorter ``?timeout=``,
and one that outlives it is answered 504 ``Timeout: request did not complete within the
allotted timeout``.

kube runs the handler in a goroutine and answers the 504 at the deadline while the handler
carries on; its late writes are dropped. A thread of gunicorn's threaded worker cannot be
stopped, and moving every request to a second thread would cost each one a hand-off, so the
deadline is honoured where the front door sees the request: once authentication and
authorization are done (reviews may have waited on the cluster), before any handler runs; and
when the handler returns, when a late answer, whatever it says, is replaced by the 504 (a
write may have happened, exactly as with kube's 504). The handler's own waits are not cut
short: a request stuck on the store answers when the store lets it go.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from handlers.api.errors import bad_request, timeout
from proxy.durations import parse_duration
from proxy.longrunning import is_long_running
from proxy.requestinfo import RequestInfo


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a request's answer is due (``time.monotonic()``)."""

    at: float

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def check(self) -> None:
        """Raise kube's 504 once the deadline has passed."""
        if self.passed():
            raise timeout()


class RequestTimeout:
    """Gives each request its deadline; ``seconds`` 0 gives none."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def start(self, info: RequestInfo, query: Mapping[str, str], now: float) -> Deadline | None:
        """The deadline of a request that arrived at ``now``; None for a long-running one.
        A malformed ``?timeout=`` is kube's 400."""
        if is_long_running(info):
            return None
        seconds = self._seconds
        asked = _client_timeout(query)
        if asked is not None and 0 < asked < seconds:
            seconds = asked  # 0, negative or longer: the server's own, as in kube
        return Deadline(now + seconds) if seconds > 0 else None


def _client_timeout(query: Mapping[str, str]) -> float | None:
    value = query.get("timeout", "")
    if not value:
        return None
    try:
        return parse_duration(value)
    except ValueError as ex:
        raise bad_request(f"invalid timeout specified in the request URL - {ex}") from None
