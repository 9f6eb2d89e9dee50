"""The Task controller's Prometheus metrics, under controller-runtime's names, help and labels
(``pkg/metrics/workqueue.go``, ``pkg/internal/controller/metrics``), so that dashboards and
alerts written for kubebuilder controllers read ours unchanged.

The queue's depth, its unfinished work and its longest running item are read from the live
queue at each scrape, as gauges computed when asked; counters and histograms move as work is
done. ``leader_election_master_status`` is :mod:`k8s.leaderelection`'s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_QUEUE = ("name", "controller")
_SECONDS = tuple(10e-9 * 10**i for i in range(12))  # ExponentialBuckets(10e-9, 10, 12)

ADDS = Counter("workqueue_adds", "Total number of adds handled by workqueue", _QUEUE)
RETRIES = Counter("workqueue_retries", "Total number of retries handled by workqueue", _QUEUE)
QUEUE_DURATION = Histogram(
    "workqueue_queue_duration_seconds",
    "How long in seconds an item stays in workqueue before being requested",
    _QUEUE,
    buckets=_SECONDS,
)
WORK_DURATION = Histogram(
    "workqueue_work_duration_seconds",
    "How long in seconds processing an item from workqueue takes.",
    _QUEUE,
    buckets=_SECONDS,
)
RECONCILES = Counter(
    "controller_runtime_reconcile",
    "Total number of reconciliations per controller",
    ("controller", "result"),
)
RECONCILE_ERRORS = Counter(
    "controller_runtime_reconcile_errors",
    "Total number of reconciliation errors per controller",
    ("controller",),
)
RECONCILE_TIME = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Length of time per reconciliation per controller",
    ("controller",),
    buckets=(
        *(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5),
        *(0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5),
        *(6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60),
    ),
)
MAX_CONCURRENT = Gauge(
    "controller_runtime_max_concurrent_reconciles",
    "Maximum number of concurrent reconciles per controller",
    ("controller",),
)
ACTIVE_WORKERS = Gauge(
    "controller_runtime_active_workers",
    "Number of currently used workers per controller",
    ("controller",),
)

PRIORITY_LABELS = ("0", "-100")
"""controller-runtime's priorities of a live change and of an initial list's item, by the
queue's LIVE and BACKLOG."""


@dataclass(frozen=True, slots=True)
class QueueState:
    """What a queue holds now: keys waiting by priority, and how long each held key has run."""

    waiting: tuple[int, ...]
    running: tuple[float, ...]


class _QueueGauges(Collector):
    """``workqueue_depth``, ``workqueue_unfinished_work_seconds`` and
    ``workqueue_longest_running_processor_seconds`` of every named queue, read at scrape."""

    def __init__(self) -> None:
        self._queues: dict[str, Callable[[], QueueState]] = {}
        self._lock = threading.Lock()

    def watch(self, name: str, state: Callable[[], QueueState]) -> None:
        with self._lock:
            self._queues[name] = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "workqueue_depth",
            "Current depth of workqueue by workqueue and priority",
            labels=(*_QUEUE, "priority"),
        )
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been "
            "observed by work_duration. Large values indicate stuck threads. One can deduce "
            "the number of stuck threads by observing the rate at which this increases.",
            labels=_QUEUE,
        )
        longest = GaugeMetricFamily(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            labels=_QUEUE,
        )
        with self._lock:
            queues = list(self._queues.items())
        for name, state in queues:
            found = state()
            for priority, count in zip(PRIORITY_LABELS, found.waiting, strict=True):
                depth.add_metric((name, name, priority), count)
            unfinished.add_metric((name, name), sum(found.running))
            longest.add_metric((name, name), max(found.running, default=0.0))
        yield from (depth, unfinished, longest)


QUEUE_GAUGES = _QueueGauges()
REGISTRY.register(QUEUE_GAUGES)
