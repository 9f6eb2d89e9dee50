"""The fast reader of the workers' metrics files answers what prometheus-client's own merge
answers (the reference), scrape after scrape, while workers write, new series appear and
the master folds a dead worker's files into an archive."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from proxy.metricfiles import Files
from tests.support.scraping import parse

WRITER: Any = MmapedDict  # prometheus-client's own (untyped) writer and merger of the files
MERGER: Any = MultiProcessCollector
BUCKETS = ("0.1", "1.0", "+Inf")
HELP = 'Requests, "quoted" and a back\\slash'


class Worker:
    """What one worker writes: prometheus-client's own file format, through its writer."""

    def __init__(self, directory: Path, pid: str) -> None:
        self.files: dict[str, Any] = {}
        self.directory, self.pid = directory, pid

    def write(
        self, typ: str, metric: str, sample: str, labels: dict[str, str], value: float
    ) -> None:
        name = f"{typ}_{self.pid}.db"
        if name not in self.files:
            self.files[name] = WRITER(str(self.directory / name))
        key = mmap_key(metric, sample, list(labels), list(labels.values()), HELP)
        self.files[name].write_value(key, value, 0.0)

    def close(self) -> None:
        for written in self.files.values():
            written.close()


def reference(directory: Path) -> dict[Any, float]:
    registry = CollectorRegistry()
    MERGER(registry, path=str(directory))
    return parse(generate_latest(registry).decode())


def fill(worker: Worker, scale: float, extra: int = 0) -> None:
    for code in ("200", "404", *(f"5{n:02d}" for n in range(extra))):
        worker.write(
            "counter", "requests", "requests_total", {"code": code, "verb": "GET"}, 3 * scale
        )
    for le, count in zip(BUCKETS, (1, 2, 4), strict=True):
        labels = {"verb": "GET", "le": le}
        worker.write("histogram", "latency", "latency_bucket", labels, count * scale)
    worker.write("histogram", "latency", "latency_sum", {"verb": "GET"}, 0.5 * scale)
    worker.write("gauge_livesum", "inflight", "inflight", {"kind": "readOnly"}, 2 * scale)
    worker.write("gauge_liveall", "revision", "revision", {}, 7 * scale)
    worker.write("gauge_max", "highest", "highest", {}, 10 * scale)


def test_the_files_of_several_workers_read_as_prometheus_client_merges_them(tmp_path: Path) -> None:
    workers = [Worker(tmp_path, str(pid)) for pid in (101, 102, 103)]
    reader = Files(str(tmp_path))
    for n, worker in enumerate(workers):
        fill(worker, n + 1)
    first = parse(reader.text().decode())
    assert first == reference(tmp_path)
    assert first[("requests_total", frozenset({("code", "200"), ("verb", "GET")}))] == 18
    assert first[("latency_count", frozenset({("verb", "GET")}))] == 42  # (1 + 2 + 4) * 6
    assert first[("latency_bucket", frozenset({("verb", "GET"), ("le", "1.0")}))] == 18
    assert first[("revision", frozenset({("pid", "102")}))] == 14
    assert first[("highest", frozenset())] == 30

    for n, worker in enumerate(workers):  # values change in place, new series are appended
        fill(worker, 2 * (n + 1), extra=5)
    second = parse(reader.text().decode())
    assert second == reference(tmp_path)
    assert second[("requests_total", frozenset({("code", "503"), ("verb", "GET")}))] == 36
    for worker in workers:
        worker.close()


def test_an_archive_replaced_and_a_dead_workers_files_gone_are_read_again(tmp_path: Path) -> None:
    living, dead = Worker(tmp_path, "201"), Worker(tmp_path, "202")
    fill(living, 1)
    fill(dead, 1)
    reader = Files(str(tmp_path))
    before = parse(reader.text().decode())
    dead.close()
    archive = Worker(tmp_path / "aside", "archive")
    os.mkdir(tmp_path / "aside")
    fill(archive, 1)  # what the master folds the dead worker's counters and histograms into
    archive.close()
    for typ in ("counter", "histogram"):
        os.replace(tmp_path / "aside" / f"{typ}_archive.db", tmp_path / f"{typ}_archive.db")
        os.remove(tmp_path / f"{typ}_202.db")
    for path in tmp_path.glob("gauge_*_202.db"):
        os.remove(path)
    after = parse(reader.text().decode())
    assert after == reference(tmp_path)
    counted = ("requests_total", frozenset({("code", "200"), ("verb", "GET")}))
    assert after[counted] == before[counted] == 6
    assert ("revision", frozenset({("pid", "202")})) not in after
    living.close()
