"""The combinedtasks phase: a list of 2,000 Tasks with 5 Events each, and a watch's cost.

The server reads its own fake cluster (on loopback, in this process), filled with the Tasks
and their labelled Events. The list is timed twice over: with the Events cache off (every
list fetches both upstream lists, so it compares fairly with the baseline) and with the
default TTL; the baseline is the bench itself fetching and parsing the same two upstream
lists, in the same run. The fake counts the upstream calls: per list, and per 1,000 Task
changes seen by an open watch, beside the tutorial's one Events LIST per watch event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import requests

from bench.report import Figure, Goal, Ratio, figures_table, percentile, ratios_table
from bench.serve import GROUPS, REAL_APP, USER, Launch, Served
from bench.wire import Connection
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import EVENTS, TASKS

NAMESPACE = "bench-combined"
TASKS_PATH = f"/apis/example.example.com/v1/namespaces/{NAMESPACE}/tasks"
EVENTS_PATH = f"/api/v1/namespaces/{NAMESPACE}/events"
COMBINED = f"/apis/search.task.example.example.com/v1/namespaces/{NAMESPACE}/combinedtasks"
TASK_LISTS = r"/apis/example.example.com/v1(/namespaces/[^/]+)?/tasks"
EVENT_LISTS = r"/api/v1(/namespaces/[^/]+)?/events"
RATIO = Goal(1.5, at_least=False)
WATCH_CHANGES = 1000


@dataclass(frozen=True, slots=True)
class Combined:
    """What the phase measured."""

    cold: Figure  # Events cache off: two upstream lists per list
    warm: Figure  # the default TTL
    baseline: Figure  # the two upstream lists fetched and parsed by the bench
    calls_cold: tuple[float, float]  # (Task LISTs, Events LISTs) per list
    calls_warm: tuple[float, float]
    watch_events_lists: int  # Events LISTs while a watch saw WATCH_CHANGES changes
    watch_seconds: float


def fill(cluster: FakeCluster, tasks: int, events: int) -> None:
    """``tasks`` Tasks in one namespace, each with ``events`` labelled Events."""
    for t in range(tasks):
        task = cluster.objects.put(
            TASKS,
            {
                "metadata": {"name": f"task-{t:05d}", "namespace": NAMESPACE},
                "spec": {
                    "priority": t % 11,
                    "deadline": "2030-01-01T00:00:00Z",
                    "details": "Rebuild the search index of the tenant's shards.",
                    "taskState": "Pending",
                },
            },
        )
        uid = task["metadata"]["uid"]
        for e in range(events):
            cluster.objects.put(
                EVENTS,
                {
                    "metadata": {
                        "name": f"task-{t:05d}.{e}",
                        "namespace": NAMESPACE,
                        "labels": {"example.example.com/task-uid": uid},
                    },
                    "involvedObject": {"kind": "Task", "name": f"task-{t:05d}", "uid": uid},
                    "reason": ("TaskCreated", "TaskUpdated")[min(e, 1)],
                    "message": "Task has been updated",
                    "type": "Normal",
                    "firstTimestamp": f"2026-01-01T00:00:{e:02d}Z",
                    "count": 1,
                },
            )


def _timed(call: Callable[[], None], times: int) -> list[float]:
    call()  # warm-up
    latencies = []
    for _ in range(times):
        began = time.monotonic()
        call()
        latencies.append(time.monotonic() - began)
    return latencies


def _lists(served: Served, times: int) -> tuple[list[float], tuple[float, float]]:
    """Sequential combinedtasks lists on one connection; and the upstream calls per list."""
    assert served.cluster is not None
    conn = Connection(served.target)
    request = served.target.get(COMBINED)

    def one() -> None:
        reply = conn.exchange(request)
        if reply.status != 200:
            raise RuntimeError(f"combinedtasks list: HTTP {reply.status}: {reply.body[:300]!r}")

    try:
        one()
        served.cluster.requests.clear()
        latencies = _timed(one, times)
    finally:
        conn.close()
    lists = times + 1  # with the warm-up
    calls = (
        served.cluster.count("GET", TASK_LISTS, watch=False) / lists,
        served.cluster.count("GET", EVENT_LISTS, watch=False) / lists,
    )
    return latencies, calls


def _baseline(cluster: FakeCluster, times: int) -> list[float]:
    """Fetching and parsing the two upstream lists, nothing else."""
    session = requests.Session()
    session.trust_env = False
    session.verify = cluster.ca_file
    session.headers["Authorization"] = f"Bearer {cluster.token}"

    def both() -> None:
        orjson.loads(session.get(cluster.url + TASKS_PATH, timeout=60).content)
        orjson.loads(
            session.get(
                cluster.url + EVENTS_PATH,
                params={"labelSelector": "example.example.com/task-uid"},
                timeout=60,
            ).content
        )

    return _timed(both, times)


def _watch_cost(served: Served) -> tuple[int, float]:
    """Events LISTs while an open watch receives WATCH_CHANGES Task changes."""
    cluster = served.cluster
    assert cluster is not None
    session = requests.Session()
    session.trust_env = False
    session.verify = served.pki.ca_file
    session.cert = served.pki.client(USER, GROUPS)
    task = cluster.objects.get(TASKS, NAMESPACE, "task-00000")
    assert task is not None
    url = f"https://{served.target.host}:{served.target.port}{COMBINED}"
    params = {"watch": "true", "resourceVersion": task["metadata"]["resourceVersion"]}
    params["fieldSelector"] = "metadata.name=task-00000"
    response = session.get(url, params={**params, "timeoutSeconds": "120"}, stream=True)
    time.sleep(0.5)  # the watch is open upstream
    cluster.requests.clear()
    began = time.monotonic()
    for number in range(WATCH_CHANGES):
        task["spec"]["priority"] = number % 11
        task = cluster.objects.update(TASKS, NAMESPACE, "task-00000", task)
    seen = 0
    lines: Iterator[bytes] = response.iter_lines()
    for line in lines:
        if line and orjson.loads(line)["type"] == "MODIFIED":
            seen += 1
            if seen == WATCH_CHANGES:
                break
    elapsed = time.monotonic() - began
    response.close()
    return cluster.count("GET", EVENT_LISTS, watch=False), elapsed


def run(
    root: Path,
    launch: Launch,
    lists: int,
    say: Callable[[str], None],
    check: Callable[[str, Served], None],
    tasks: int = 2000,
    events: int = 5,
) -> Combined:
    """Both servers (cache off, default TTL) with their fake clusters filled alike."""
    figures: dict[str, tuple[list[float], tuple[float, float]]] = {}
    baseline: list[float] = []
    watch_lists, watch_seconds = 0, 0.0
    for key, env in (("cold", {"APISERVER_EVENTS_CACHE_SECONDS": "0"}), ("warm", {})):
        with launch.serve(root / f"combined-{key}", REAL_APP, cluster=True, env=env) as served:
            assert served.cluster is not None
            say(f"combinedtasks ({key}): filling {tasks:,} Tasks with {events} Events each")
            fill(served.cluster, tasks, events)
            say(f"combinedtasks ({key}): {lists} lists")
            figures[key] = _lists(served, lists)
            if key == "cold":
                say("combinedtasks: the baseline (the two upstream lists, fetched and parsed)")
                baseline = _baseline(served.cluster, lists)
            else:
                say(f"combinedtasks: a watch seeing {WATCH_CHANGES:,} Task changes")
                watch_lists, watch_seconds = _watch_cost(served)
        check(f"combined-{key}", served)
    return Combined(
        _median("combinedtasks list, Events cache off", figures["cold"][0]),
        _median("combinedtasks list, Events cache 2 s", figures["warm"][0]),
        _median("the two upstream lists, fetched and parsed", baseline),
        figures["cold"][1],
        figures["warm"][1],
        watch_lists,
        watch_seconds,
    )


def _median(label: str, latencies: list[float]) -> Figure:
    return Figure(label, percentile(latencies, 50) * 1000, "ms", latencies, 0)


def report(combined: Combined) -> str:
    """The latencies, the ratio to the baseline, and the upstream calls."""
    ratio = Ratio(
        "combinedtasks list (cache off) / the two upstream lists",
        combined.cold.value,
        combined.baseline.value,
        RATIO,
    )
    tutorial = WATCH_CHANGES  # one Events LIST per watch event
    return "\n".join(
        [
            "combinedtasks: Tasks and Events from a fake cluster on loopback (medians)",
            figures_table([combined.cold, combined.warm, combined.baseline]),
            "",
            ratios_table([ratio]),
            "",
            "upstream calls (Task LISTs + Events LISTs) per combinedtasks list: "
            f"cache off {combined.calls_cold[0]:.2f} + {combined.calls_cold[1]:.2f}, "
            f"cache 2 s {combined.calls_warm[0]:.2f} + {combined.calls_warm[1]:.2f} "
            "(the tutorial: 1 + 1, with an in (...) selector of every uid of the page)",
            f"Events LISTs while a watch saw {WATCH_CHANGES:,} Task changes in "
            f"{combined.watch_seconds:.1f} s: {combined.watch_events_lists} "
            f"(the tutorial: {tutorial:,}, one per watch event)",
        ]
    )
