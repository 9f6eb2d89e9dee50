"""``GET /metrics``: the Prometheus text format, authorized at the gate as kube authorizes it
(a non-resource ``get``). Under gunicorn one scrape sums every worker's files
(:mod:`proxy.metricsdir`) and reads each live worker's ``process_*``; an app made in process
scrapes its own registry. Extra collectors (the store's figures) are read at scrape time.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import falcon
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from handlers.api import GROUP
from proxy.metricfiles import Files
from proxy.metricsdir import DIRECTORY
from store import Stats, Store

log = logging.getLogger("apiserver")

_WORKER_FILE = re.compile(r"_(\d+)\.db$")


class Metrics:
    """The ``/metrics`` resource: the workers' files (or this process's registry), then
    what ``extra`` collectors read at scrape time."""

    def __init__(self, extra: Iterable[Collector] = ()) -> None:
        directory = os.environ.get(DIRECTORY)
        self._files = Files(directory) if directory else None
        self._own = CollectorRegistry()
        if directory:
            self._own.register(_Workers(directory))
        for collector in extra:
            self._own.register(collector)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE_PLAIN_0_0_4  # kube's
        shared = self._files.text() if self._files else generate_latest(REGISTRY)
        resp.data = shared + generate_latest(self._own)


class StoreFigures:
    """The store's figures, read at most every ``every`` seconds (a count of every object is
    not free; kube counts once a minute): ``apiserver_resource_objects`` and its older name,
    and the latest and compacted revisions. A store that cannot be read reports -1, as kube."""

    def __init__(
        self, store: Callable[[], Store], resources: Iterable[str], *, every: float = 15.0
    ) -> None:
        self._store = store
        self._known = frozenset(resources)
        self._every = every
        self._read_at = -every
        self._stats = Stats(-1, -1, {})
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Any]:
        stats = self._read()
        objects = GaugeMetricFamily(
            "apiserver_resource_objects",
            "[ALPHA] Number of stored objects at the time of last check split by kind. In case "
            "of a fetching error, the value will be -1.",
            labels=("group", "resource"),
        )
        storage = GaugeMetricFamily(
            "apiserver_storage_objects",
            "[STABLE] Number of stored objects at the time of last check split by kind. In case "
            "of a fetching error, the value will be -1.",
            labels=("resource",),
        )
        for resource in self._resources(stats):
            count = stats.objects.get(resource, 0) if stats.revision >= 0 else -1
            objects.add_metric((GROUP, resource), count)
            storage.add_metric((f"{resource}.{GROUP}",), count)
        yield objects
        yield storage
        yield GaugeMetricFamily(
            "task_search_store_revision", "The store's latest revision.", stats.revision
        )
        yield GaugeMetricFamily(
            "task_search_store_compacted_revision",
            "The oldest revision the store's change log still answers from.",
            stats.compacted,
        )

    def _read(self) -> Stats:
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= self._every:
                self._read_at = now
                try:
                    self._stats = self._store().stats()
                except Exception as ex:
                    log.warning("the store's figures could not be read: %s", ex)
                    self._stats = Stats(-1, -1, {})
            return self._stats

    def _resources(self, stats: Stats) -> list[str]:
        return sorted(set(stats.objects) | set(self._known))


class _Workers:
    """``process_*`` of each live worker, labelled by ``pid``: the scraping worker reads the
    others' ``/proc`` entries (their live gauges' files name them)."""

    def __init__(self, directory: str) -> None:
        self._directory = directory

    def collect(self) -> Iterator[Any]:
        pids = sorted(
            {
                int(found.group(1))
                for name in os.listdir(self._directory)
                if name.startswith("gauge_live") and (found := _WORKER_FILE.search(name))
            }
        )
        families: dict[str, Any] = {}
        for pid in pids:
            collector: Any = ProcessCollector(pid=functools.partial(int, pid), registry=None)
            for metric in collector.collect():
                family = families.setdefault(
                    metric.name, Metric(metric.name, metric.documentation, metric.type)
                )
                for sample in metric.samples:
                    family.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from families.values()
