"""The directory of prometheus-client's multiprocess mode, kept by the gunicorn master: each
worker writes its metrics into memory-mapped files there, one per metric type, and a scrape
sums them (:mod:`proxy.scrape`).

The directory is emptied before any worker starts, so a restart never counts the last run's
requests. A dead worker's counters and histograms are folded into one archive file per type,
so files do not pile up over worker restarts and nothing is lost or counted twice; its gauges
go with it, a dead process measures nothing.

``prometheus_client`` picks its mode when first imported, so the master imports it only
after :func:`prepare` has set the directory in the environment its workers inherit.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from typing import Any

DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
INFIX = "requests"  # proxy.requestseries' files: counter_requests_<pid>.db, histogram_...
_ARCHIVED = ("counter", "histogram", "summary")  # what keeps counting after its process
_PREFIX = "metrics-"


def prepare(directory: str = "") -> str:
    """Master, before any worker: an empty directory (a fresh temporary one by default), set in
    the environment the workers inherit."""
    directory = directory or os.environ.get(DIRECTORY) or tempfile.mkdtemp(prefix=_PREFIX)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))
    os.environ[DIRECTORY] = directory
    return directory


def retire(pid: int) -> None:
    """Master, when worker ``pid`` has exited: fold its counters and histograms into the
    archives (written aside, then renamed over: a scrape reads the old or the new one) and
    remove its files."""
    from prometheus_client import mmap_dict, multiprocess

    files: Any = mmap_dict  # untyped: prometheus-client's own reader and writer of the files
    merge: Any = multiprocess.MultiProcessCollector.merge

    directory = os.environ[DIRECTORY]
    for typ in _ARCHIVED:
        found = [f"{typ}_{pid}.db", f"{typ}_{INFIX}_{pid}.db"]  # the library's, requestseries'
        deads = [path for name in found if os.path.exists(path := os.path.join(directory, name))]
        if not deads:
            continue
        archive = os.path.join(directory, f"{typ}_archive.db")
        sources = [path for path in (archive, *deads) if os.path.exists(path)]
        merged = merge(sources, accumulate=False)
        written = files.MmapedDict(f"{archive}.new")
        for metric in merged:
            for sample in metric.samples:
                labels = sample.labels
                key = files.mmap_key(
                    metric.name,
                    sample.name,
                    list(labels),
                    list(labels.values()),
                    metric.documentation,
                )
                written.write_value(key, sample.value, 0.0)
        written.close()
        os.replace(f"{archive}.new", archive)
        for dead in deads:
            os.remove(dead)
    for path in glob.glob(os.path.join(directory, f"gauge_*_{pid}.db")):
        os.remove(path)


def remove() -> None:
    """Master, at exit: the directory goes (it is only ever a temporary one of ours)."""
    directory = os.environ.get(DIRECTORY)
    if directory and os.path.basename(directory).startswith(_PREFIX):
        shutil.rmtree(directory, ignore_errors=True)
