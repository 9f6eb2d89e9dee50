"""The observability phase: what kube's request metrics and the audit log cost gets and
creates, and how long a scrape of many workers takes.

Two servers as deployed (gunicorn, 2 workers, TLS, a fake cluster each), 8 clients: one with
the metrics on and an audit policy logging every request at Metadata (:data:`POLICY`, on
stdout, as the monitoring component deploys it), one with both off. Rounds of gets, then of creates,
alternate between the two, the first server changing each round; the figure is the median of
the rounds' ratios, so drift between rounds (this host is shared) cancels out.

Then the scrape: ten workers' worth of metrics files, each of 2,000 label sets (1,500 counter
series and 500 histograms of kube's 23 buckets), written as prometheus-client's workers write
them into the observed server's directory, scraped over HTTPS: a worker's first scrape, and
the median of the next ones; and prometheus-client's own merge of the same files, which the
server's reader replaces. The targets are issue 17's.
"""

from __future__ import annotations

import http.client
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from bench import load
from bench.report import Goal
from bench.scale import Line
from bench.scenarios import create_job, object_path
from bench.serve import REAL_APP, Served, serve
from bench.wire import Target

NAMESPACE = "observed"
CLIENTS = 8
ROUNDS = 7
WARMUP, SECONDS = 0.5, 3.0
RATIO = Goal(0.9, at_least=True)
SCRAPE = Goal(100.0, at_least=False)
WORKER_FILES = 10
COUNTERS, HISTOGRAMS = 1_500, 500
SCRAPES = 9
POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
"""
"""Every request at Metadata, one event each: the stage kube's documented example policy and
ours (``k8s/manifests/components/monitoring``) leave out, as most clusters do."""
_LABELS = ["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component"]
_BUCKETS = (
    *("0.005", "0.025", "0.05", "0.1", "0.2", "0.4", "0.6", "0.8", "1.0", "1.25", "1.5"),
    *("2.0", "3.0", "4.0", "5.0", "6.0", "8.0", "10.0", "15.0", "20.0", "30.0", "45.0"),
    *("60.0", "+Inf"),
)


def run(directory: Path, say: Callable[[str], None]) -> list[Line]:
    """The phase's figures, from two servers of its own under ``directory``."""
    say(f"observability: gets and creates from {CLIENTS} clients, metrics and audit on and off")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "policy.yaml").write_text(POLICY)
    observed_env = {
        "APISERVER_AUDIT_POLICY_FILE": str(directory / "policy.yaml"),
        "APISERVER_METRICS_DIR": str(directory / "metrics"),
    }
    with ExitStack() as stack:
        observed = stack.enter_context(
            serve(directory / "observed", REAL_APP, cluster=True, env=observed_env)
        )
        plain = stack.enter_context(
            serve(directory / "plain", REAL_APP, cluster=True, env={"APISERVER_METRICS": "false"})
        )
        servers = {"on": observed, "off": plain}
        for served in servers.values():
            _create(served, "probe")
        rates: dict[tuple[str, str], list[float]] = {
            (verb, name): [] for verb in ("gets", "creates") for name in servers
        }
        for number in range(ROUNDS):
            order = list(servers) if number % 2 == 0 else list(reversed(servers))
            for verb in ("gets", "creates"):
                for name in order:
                    phase = _round(servers[name], verb, f"r{number}")
                    rates[verb, name].append(phase.rate)
        say(f"observability: scrapes of {WORKER_FILES} workers' files")
        _write_files(directory / "metrics")
        first, scrapes = _scrapes(observed.target)
    library = _library_merge(directory / "metrics")
    lines = []
    for verb in ("gets", "creates"):
        on, off = rates[verb, "on"], rates[verb, "off"]
        ratio = statistics.median(a / b for a, b in zip(on, off, strict=True))
        lines.append(
            Line(
                f"{verb}/s with metrics and a Metadata audit log / with neither",
                ratio,
                "x",
                RATIO,
                note=f"median of {ROUNDS} rounds' ratios ({statistics.median(on):,.0f} / "
                f"{statistics.median(off):,.0f} /s), {CLIENTS} clients",
            )
        )
    series = WORKER_FILES * (COUNTERS + HISTOGRAMS)
    lines += [
        Line(
            f"scrape of {WORKER_FILES} workers x {COUNTERS + HISTOGRAMS:,} label sets",
            statistics.median(scrapes) * 1000,
            "ms",
            SCRAPE,
            note=f"HTTPS, median of {SCRAPES}; a worker's first: {first * 1000:.0f} ms",
        ),
        Line(
            "the same files merged by prometheus-client",
            library * 1000,
            "ms",
            note=f"{series:,} series in files; what the server's own reader replaces",
        ),
    ]
    return lines


def _create(served: Served, prefix: str) -> None:
    job = create_job(served.target, NAMESPACE, prefix, count=1, warmup=0.0, seconds=30)
    load.run(served.target, job, 1, served.pid)


def _round(served: Served, verb: str, names: str) -> load.Phase:
    if verb == "gets":
        path = object_path(NAMESPACE, "probe")
        job = load.Job(served.target.get(path), warmup=WARMUP, seconds=SECONDS)
    else:
        job = create_job(served.target, NAMESPACE, names, warmup=WARMUP, seconds=SECONDS)
    return load.run(served.target, job, CLIENTS, served.pid)


def _write_files(directory: Path) -> None:
    """Each fake worker's counters and histograms, through prometheus-client's own writer."""
    writer: Any = MmapedDict  # untyped
    for n in range(WORKER_FILES):
        pid = 9_000_000 + n  # no process: the scrape reads its files, not its /proc
        counters = writer(str(directory / f"counter_{pid}.db"))
        for i in range(COUNTERS):
            values = ["GET", "", "g", "v1", f"r{i % 50}", "", "resource", "apiserver"]
            key = mmap_key(
                "bench_request", "bench_request_total", [*_LABELS, "code"], [*values, str(i)], "h"
            )
            counters.write_value(key, float(i), 0.0)
        counters.close()
        histograms = writer(str(directory / f"histogram_{pid}.db"))
        for i in range(HISTOGRAMS):
            values = ["GET", "", "g", "v1", f"r{i % 50}", f"s{i}", "resource", "apiserver"]
            for le in _BUCKETS:
                name = "bench_duration_seconds"
                key = mmap_key(name, f"{name}_bucket", [*_LABELS, "le"], [*values, le], "h")
                histograms.write_value(key, 1.0, 0.0)
            key = mmap_key(name, f"{name}_sum", _LABELS, values, "h")
            histograms.write_value(key, 0.5, 0.0)
        histograms.close()


def _scrapes(target: Target) -> tuple[float, list[float]]:
    """Seconds of one connection's first scrape (that worker's first), and of the next ones."""
    connection = http.client.HTTPSConnection(target.host, target.port, context=target.context())
    took = []
    try:
        for _ in range(SCRAPES + 1):
            began = time.perf_counter()
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            body = response.read()
            took.append(time.perf_counter() - began)
            assert response.status == 200 and b"bench_duration_seconds_count" in body
    finally:
        connection.close()
    return took[0], took[1:]


def _library_merge(directory: Path) -> float:
    registry = CollectorRegistry()
    collector: Any = MultiProcessCollector  # untyped
    collector(registry, path=str(directory))
    began = time.perf_counter()
    generate_latest(registry)
    return time.perf_counter() - began


def title() -> str:
    return "Observability: metrics and audit on gets and creates; a scrape of 10 workers"
