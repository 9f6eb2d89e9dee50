"""kube-apiserver's request metrics (k8s.io/apiserver ``pkg/endpoints/metrics``) with kube's
names, help, labels and buckets, so an operator's dashboards and alerts read this server as
they read kube's; recorded by the :class:`Instrumentation` middleware.

What kube counts, this server counts: requests that reach a handler, health checks (the path
as ``subresource``, no component), and requests the server refused in self-defense (429 from
the in-flight limit, 504 at the deadline, also in ``apiserver_request_terminations_total``).
As in kube, a request refused by authentication or authorization is not counted, and neither
are discovery, OpenAPI and ``/metrics`` itself. A watch is observed when it ends: its
duration is its lifetime; its bytes are in ``apiserver_watch_events_sizes`` (kube also
measures a ``?watch`` response's size, but here the fan-out writes most of it to the socket).
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import parse_qs

import falcon
from prometheus_client import Counter, Gauge, Histogram

from handlers.api import GROUP, VERSION
from proxy import authz
from proxy.metricsdir import DIRECTORY
from proxy.outlets import observed
from proxy.requestinfo import RequestInfo
from proxy.requestseries import Family, FileRecorder, LibraryRecorder, Recorder

COMPONENT = "apiserver"
APPLY_PATCH = "application/apply-patch+yaml"
_VERBS = frozenset({"DELETE", "GET", "LIST", "PATCH", "POST", "PUT", "WATCH"})
_LABELS = ("verb", "group", "version", "resource", "subresource", "scope", "component")
_DURATION_BUCKETS = (
    *(0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10),
    *(15, 20, 30, 45, 60),
)
_SIZE_BUCKETS = tuple(1000 * 10.0**n for n in range(7))

REQUESTS = Counter(
    "apiserver_request_total",
    "[STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, "
    "version, resource, scope, component, and HTTP response code.",
    ("verb", "dry_run", *_LABELS[1:], "code"),
)
DURATION = Histogram(
    "apiserver_request_duration_seconds",
    "[STABLE] Response latency distribution in seconds for each verb, dry run value, group, "
    "version, resource, subresource, scope and component.",
    ("verb", "dry_run", *_LABELS[1:]),
    buckets=_DURATION_BUCKETS,
)
RESPONSE_SIZES = Histogram(
    "apiserver_response_sizes",
    "[STABLE] Response size distribution in bytes for each group, version, verb, resource, "
    "subresource, scope and component.",
    _LABELS,
    buckets=_SIZE_BUCKETS,
)
LONG_RUNNING = Gauge(
    "apiserver_longrunning_requests",
    "[STABLE] Gauge of all active long-running apiserver requests broken out by verb, group, "
    "version, resource, scope and component. Not all requests are tracked this way.",
    _LABELS,
    multiprocess_mode="livesum",
)
IN_FLIGHT = Gauge(
    "apiserver_current_inflight_requests",
    "[STABLE] Maximal number of currently used inflight request limit of this apiserver per "
    "request kind in last second.",
    ("request_kind",),
    multiprocess_mode="livesum",
)
TERMINATIONS = Counter(
    "apiserver_request_terminations_total",
    "[ALPHA] Number of requests which apiserver terminated in self-defense.",
    (*_LABELS, "code"),
)
WATCH_EVENTS = Counter(
    "apiserver_watch_events_total",
    "[ALPHA] Number of events sent in watch clients",
    ("group", "version", "resource"),
)
WATCH_EVENT_SIZES = Histogram(
    "apiserver_watch_events_sizes",
    "[ALPHA] Watch event size distribution in bytes",
    ("group", "version", "resource"),
    buckets=tuple(1024 * 2.0**n for n in range(8)),
)


FANOUT_REVISION = Gauge(
    "task_search_watch_fanout_revision",
    "The store revision each worker's watch fan-out has read up to (its lag behind the store: "
    "task_search_store_revision minus this).",
    multiprocess_mode="liveall",
)
WATCHES_DROPPED = Counter(
    "task_search_watch_dropped_total",
    "Watches the fan-out ended early, by reason: slow (the client stopped reading) or "
    "overflow (too many changes while its starting state was read).",
    ("reason",),
)


class _Children:
    """A labelled metric's series by their label values, found in a dict: prometheus-client's
    ``labels()`` checks and locks on every call, and every request looks up four series."""

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._found: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._found.get(values)
        if child is None:
            child = self._found[values] = self._metric.labels(*values)
        return child


_REQUESTS, _DURATION = _Children(REQUESTS), _Children(DURATION)
_LONG_RUNNING, _TERMINATIONS = _Children(LONG_RUNNING), _Children(TERMINATIONS)
_recorders: dict[int, Recorder] = {}


def recorder() -> Recorder:
    """This process's writer of the per-request series (one per process: its files are its
    own): into the metrics directory under gunicorn, else through the library."""
    pid = os.getpid()
    found = _recorders.get(pid)
    if found is None:
        directory = os.environ.get(DIRECTORY)
        if directory:
            found = FileRecorder(
                directory,
                family(REQUESTS, ("verb", "dry_run", *_LABELS[1:], "code")),
                family(DURATION, ("verb", "dry_run", *_LABELS[1:]), _DURATION_BUCKETS),
                family(RESPONSE_SIZES, _LABELS, _SIZE_BUCKETS),
            )
        else:
            found = LibraryRecorder(REQUESTS, DURATION, RESPONSE_SIZES)
        _recorders[pid] = found
    return found


def family(metric: Any, labels: tuple[str, ...], bounds: tuple[float, ...] = ()) -> Family:
    """``metric`` as its files key it: its name and help as the library describes them."""
    described = metric.describe()[0]
    ends = (*bounds, math.inf) if bounds else ()
    return Family(described.name, described.documentation, labels, ends)


def watch_events_sent(resource: str, lines: Iterable[bytes]) -> None:
    """Events of a watch of ``resource`` written to its client, one line each."""
    count, sizes = _watch_series(resource)
    sent = 0
    for line in lines:
        sizes.observe(len(line))
        sent += 1
    count.inc(sent)


@functools.cache
def _watch_series(resource: str) -> tuple[Any, Any]:
    """The two series of a resource's watch events (looked up once: a fan-out step sends to
    every watcher)."""
    return WATCH_EVENTS.labels(GROUP, VERSION, resource), WATCH_EVENT_SIZES.labels(
        GROUP, VERSION, resource
    )


def scope(info: RequestInfo) -> str:
    """kube's scope label: ``resource`` for one object (or a create), ``namespace`` for a
    namespace's collection, ``cluster`` for a cluster's; none for other paths."""
    if not info.is_resource:
        return ""
    if info.name or info.verb == "create":
        return "resource"
    return "namespace" if info.namespace else "cluster"


def verb(method: str, info: RequestInfo, content_type: str) -> str:
    """kube's verb label: the HTTP method, a read of a collection as ``LIST``, a watch as
    ``WATCH``, a server-side apply as ``APPLY``; another method as ``other``."""
    method = "GET" if method == "HEAD" else method
    if method == "GET" and scope(info) not in ("resource", ""):
        method = "LIST"
    if info.verb == "watch":
        return "WATCH"
    if method == "PATCH" and content_type == APPLY_PATCH:
        return "APPLY"
    return method if method in _VERBS else "other"


def dry_run(query_string: str) -> str:
    """kube's dry_run label: ``All``, ``invalid`` for an unknown value, or empty."""
    if "dryRun" not in query_string:
        return ""
    values = sorted(set(parse_qs(query_string).get("dryRun", [])))
    return ",".join(values) if set(values) <= {"All"} else "invalid"


class Instrumentation:
    """Middleware recording every request kube would record (see the module's docstring).
    It reads what the gate left in the request's context: the RequestInfo, whether the
    request passed it, and whether it was refused in self-defense."""

    def __init__(self) -> None:
        self._recorder = recorder()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, succeeded: bool
    ) -> None:
        labels = _labels(req)
        if labels is None:
            return
        dry = dry_run(req.query_string)
        code = str(resp.status_code)
        terminated: int | None = getattr(req.context, "terminated", None)
        if terminated is not None:
            _TERMINATIONS(*labels, str(terminated)).inc()
            if terminated == 429:
                _REQUESTS(labels[0], dry, *labels[1:], code).inc()
                return  # a dropped request: counted, neither timed nor measured
        started: float = req.context.started
        if resp.stream is None:
            size = None
            if labels[0] in ("GET", "LIST"):
                size = len(resp.data or b"") if resp.text is None else len(resp.text)
            series = (labels[0], dry, *labels[1:])
            self._recorder.record(series, code, time.perf_counter() - started, size)
            return
        _REQUESTS(labels[0], dry, *labels[1:], code).inc()
        duration = _DURATION(labels[0], dry, *labels[1:])
        running = _LONG_RUNNING(*labels)
        running.inc()

        def ended() -> None:
            running.dec()
            duration.observe(time.perf_counter() - started)

        stream = cast(Iterable[bytes], resp.stream)  # every stream here is a generator
        resp.stream = observed(stream, ended)


def _labels(req: falcon.Request) -> tuple[str, ...] | None:
    """verb, group, version, resource, subresource, scope and component of a request kube
    would count; None for one it would not."""
    info: RequestInfo | None = getattr(req.context, "info", None)
    if info is None:
        return None
    if info.path in authz.HEALTH_PATHS:
        return ("GET", "", "", "", info.path, "", "")
    counted = getattr(req.context, "passed", False) or getattr(req.context, "terminated", None)
    if not info.is_resource or not counted:
        return None
    return (
        verb(req.method, info, req.content_type or ""),
        info.group,
        info.version,
        info.resource,
        info.subresource or "",
        scope(info),
        COMPONENT,
    )
