"""The three series every request changes (kube's ``apiserver_request_total``,
``apiserver_request_duration_seconds`` and ``apiserver_response_sizes``), written at a small
part of prometheus-client's cost.

prometheus-client's multiprocess values each take its lock, ask the process id and find their
entry for each of the five numbers a request changes (a count, then a bucket and a sum of two
histograms): a fifth of the instructions of a get. Under gunicorn (a metrics directory set)
:class:`FileRecorder` finds a request's series with one lookup and writes its five numbers
under one lock into this worker's own files (``counter_requests_<pid>.db``,
``histogram_requests_<pid>.db``), through prometheus-client's writer and in its format, so
the scrape (:mod:`proxy.metricfiles`), the master's archive of a dead worker
(:mod:`proxy.metricsdir`) and the library's own merge read them as any other file. Each series'
entries are all written when it is first used, as the library does. In a process of its own
(tests), :class:`LibraryRecorder` uses the library's values, which the scrape then reads.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.utils import floatToGoString

from proxy.metricsdir import INFIX


@dataclass(frozen=True, slots=True)
class Family:
    """One metric as prometheus-client keys it: its name (a counter's without ``_total``),
    help, label names and a histogram's bucket bounds (+Inf last)."""

    name: str
    help: str
    labels: tuple[str, ...]
    bounds: tuple[float, ...] = ()


class Recorder(Protocol):
    def record(self, labels: tuple[str, ...], code: str, seconds: float, size: int | None) -> None:
        """One request of series ``labels`` (the duration's), answered with ``code``, which
        took ``seconds`` and, if it is a read, sent ``size`` bytes."""


@dataclass(frozen=True, slots=True)
class _Keys:
    count: str
    duration_sum: str
    duration_buckets: tuple[str, ...]
    size_sum: str
    size_buckets: tuple[str, ...]


class FileRecorder:
    """Writes the three series straight into this process's files in ``directory``.

    ``requests``, ``duration`` and ``sizes`` are the families; a request's labels are the
    duration's (``verb``, ``dry_run``, then the sizes' without ``dry_run``), the count's add
    ``code``."""

    def __init__(self, directory: str, requests: Family, duration: Family, sizes: Family) -> None:
        pid = os.getpid()
        writer: Any = MmapedDict  # untyped
        self._counters = writer(os.path.join(directory, f"counter_{INFIX}_{pid}.db"))
        self._histograms = writer(os.path.join(directory, f"histogram_{INFIX}_{pid}.db"))
        self._families = requests, duration, sizes
        self._lock = threading.Lock()
        self._keys: dict[tuple[tuple[str, ...], str], _Keys] = {}
        self._values: dict[str, float] = {}

    def record(self, labels: tuple[str, ...], code: str, seconds: float, size: int | None) -> None:
        keys = self._keys.get((labels, code)) or self._new(labels, code)
        _, duration, sizes = self._families
        with self._lock:
            self._add(self._counters, keys.count, 1.0)
            self._add(self._histograms, keys.duration_sum, seconds)
            at = bisect.bisect_left(duration.bounds, seconds)
            self._add(self._histograms, keys.duration_buckets[at], 1.0)
            if size is not None:
                self._add(self._histograms, keys.size_sum, float(size))
                at = bisect.bisect_left(sizes.bounds, size)
                self._add(self._histograms, keys.size_buckets[at], 1.0)

    def _add(self, file: Any, key: str, amount: float) -> None:
        value = self._values[key] = self._values[key] + amount
        file.write_value(key, value, 0.0)

    def _new(self, labels: tuple[str, ...], code: str) -> _Keys:
        """The keys of a series not recorded yet in this process; every entry written."""
        requests, duration, sizes = self._families
        verb, dry_run, *rest = labels
        count = _key(requests, "_total", (verb, dry_run, *rest, code))
        size_labels = (verb, *rest)
        keys = _Keys(
            count,
            _key(duration, "_sum", labels),
            _buckets(duration, labels),
            _key(sizes, "_sum", size_labels),
            _buckets(sizes, size_labels),
        )
        with self._lock:
            self._load(self._counters, (count,))
            self._load(self._histograms, (keys.duration_sum, *keys.duration_buckets))
            self._load(self._histograms, (keys.size_sum, *keys.size_buckets))
            self._keys[labels, code] = keys
        return keys

    def _load(self, file: Any, keys: Sequence[str]) -> None:
        """Each entry's value in the file (written as zero if new, as the library does)."""
        for key in keys:
            if key not in self._values:
                self._values[key] = file.read_value(key)[0]


def _key(family: Family, suffix: str, values: Sequence[str]) -> str:
    sample = family.name + suffix
    key: str = mmap_key(family.name, sample, list(family.labels), list(values), family.help)
    return key


def _buckets(family: Family, values: Sequence[str]) -> tuple[str, ...]:
    """The keys of a histogram's buckets, ``le`` written as the library writes it."""
    bucket = Family(family.name, family.help, (*family.labels, "le"))
    go_string: Any = floatToGoString  # untyped
    return tuple(_key(bucket, "_bucket", (*values, go_string(b))) for b in family.bounds)


class LibraryRecorder:
    """The same through prometheus-client's metric objects (a process without files)."""

    def __init__(self, requests: Any, duration: Any, sizes: Any) -> None:
        self._metrics = requests, duration, sizes
        self._children: dict[tuple[tuple[str, ...], str], tuple[Any, Any, Any]] = {}

    def record(self, labels: tuple[str, ...], code: str, seconds: float, size: int | None) -> None:
        children = self._children.get((labels, code))
        if children is None:
            requests, duration, sizes = self._metrics
            verb, dry_run, *rest = labels
            children = self._children[labels, code] = (
                requests.labels(verb, dry_run, *rest, code),
                duration.labels(*labels),
                sizes.labels(verb, *rest),
            )
        count, took, sent = children
        count.inc()
        took.observe(seconds)
        if size is not None:
            sent.observe(size)
