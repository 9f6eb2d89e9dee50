"""The per-request series written straight into a worker's files read, through
prometheus-client's own merge, exactly as the library's own metrics read in one process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from proxy.metrics import family
from proxy.requestseries import FileRecorder, LibraryRecorder

LABELS = ("verb", "group", "version", "resource", "subresource", "scope", "component")
BOUNDS = (0.005, 0.05, 1.0)
SIZES = (1000.0, 100_000.0)
REQUESTS: list[tuple[tuple[str, ...], str, float, int | None]] = [
    (("GET", "", "g", "v1", "tasks", "", "resource", "apiserver"), "200", 0.001, 1500),
    (("GET", "", "g", "v1", "tasks", "", "resource", "apiserver"), "200", 0.02, 900),
    (("GET", "", "g", "v1", "tasks", "", "resource", "apiserver"), "404", 5.0, 300),
    (("POST", "All", "g", "v1", "tasks", "", "resource", "apiserver"), "201", 0.005, None),
    (("LIST", "", "g", "v1", "tasks", "", "namespace", "apiserver"), "200", 0.3, 250_000),
    (("GET", "", "", "", "", "/livez", "", ""), "200", 0.0001, 2),
]


def _metrics(registry: CollectorRegistry) -> tuple[Any, Any, Any]:
    return (
        Counter(
            "t_requests_total",
            'Requests, "quoted"',
            ("verb", "dry_run", *LABELS[1:], "code"),
            registry=registry,
        ),
        Histogram(
            "t_duration_seconds",
            "Duration.",
            ("verb", "dry_run", *LABELS[1:]),
            buckets=BOUNDS,
            registry=registry,
        ),
        Histogram("t_sizes", "Sizes.", LABELS, buckets=SIZES, registry=registry),
    )


def _samples(metrics: Any) -> set[tuple[str, frozenset[tuple[str, str]], float]]:
    return {
        (s.name, frozenset(s.labels.items()), s.value)
        for metric in metrics
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def test_the_files_read_as_the_librarys_own_metrics(tmp_path: Path) -> None:
    reference = CollectorRegistry()
    own = _metrics(reference)
    library = LibraryRecorder(*own)
    requests, duration, sizes = own
    files = FileRecorder(
        str(tmp_path),
        family(requests, ("verb", "dry_run", *LABELS[1:], "code")),
        family(duration, ("verb", "dry_run", *LABELS[1:]), BOUNDS),
        family(sizes, LABELS, SIZES),
    )
    for labels, code, seconds, size in REQUESTS * 3:
        library.record(labels, code, seconds, size)
        files.record(labels, code, seconds, size)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"counter_requests_{_pid()}.db",
        f"histogram_requests_{_pid()}.db",
    ]
    merger: Any = MultiProcessCollector
    merged = CollectorRegistry()
    merger(merged, path=str(tmp_path))
    expected = _samples(reference.collect())
    assert _samples(merged.collect()) == expected
    assert (
        "t_requests_total",
        frozenset({**_labels(REQUESTS[0]), "code": "200"}.items()),
        6.0,
    ) in (expected)


def _labels(request: tuple[tuple[str, ...], str, float, int | None]) -> dict[str, str]:
    return dict(zip(("verb", "dry_run", *LABELS[1:]), request[0], strict=True))


def _pid() -> int:
    return os.getpid()
