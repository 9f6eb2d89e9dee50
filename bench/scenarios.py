"""The measured scenarios: create, get, list of N, and the constant-document get.

Each returns a :class:`report.Figure`. Objects are realistic CustomTasks (three labels, a
details string); the list namespace holds exactly the N objects created for it, so the list
measures N items however many the create phase adds elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from bench import load
from bench.report import Figure, Goal, percentile, skewed
from bench.serve import Served
from bench.wire import Connection, Target

COLLECTION = "/apis/search.task.example.example.com/v1/namespaces/{}/customtasks"
LIST_NAMESPACE, CREATE_NAMESPACE = "bench-list", "bench-create"
_PLACEHOLDER = b"#" * load.WIDTH
_DETAILS = (
    "Rebuild the inverted index of the tenant's search shards, then compare document counts "
    "with the primary and page the on-call engineer if the replicas disagree by more than 1%."
)
CREATES, GETS = Goal(1000, at_least=True), Goal(4000, at_least=True)
LIST_MS = Goal(100, at_least=False)


@dataclass(frozen=True, slots=True)
class Plan:
    """The knobs from the command line that every scenario needs."""

    clients: int
    warmup: float
    seconds: float
    objects: int
    lists: int
    rounds: int


@dataclass(frozen=True, slots=True)
class Store:
    """The database behind a phase's servers: the settings that choose it (none: SQLite, the
    default), the prefix of its figures' labels, and its create and list targets, which differ
    by store (the gets target goes with the contender judged by it)."""

    env: Mapping[str, str] = field(default_factory=dict)
    prefix: str = ""
    creates: Goal = CREATES
    list_ms: Goal = LIST_MS


SQLITE = Store()


def task(name: str) -> dict[str, object]:
    """A CustomTask as a client would POST it."""
    return {
        "apiVersion": "search.task.example.example.com/v1",
        "kind": "CustomTask",
        "metadata": {
            "name": name,
            "labels": {"app": "search", "tier": "backend", "owner": "bench"},
        },
        "spec": {"priority": 5, "deadline": "2030-01-01T00:00:00Z", "details": _DETAILS},
    }


def create_job(
    target: Target,
    namespace: str,
    prefix: str,
    *,
    seconds: float,
    warmup: float = 0.0,
    count: int | None = None,
) -> load.Job:
    """POSTs of distinct names ``<prefix>-<number>``: the number is spliced into the bytes."""
    body = orjson.dumps(task(f"{prefix}-{_PLACEHOLDER.decode()}"))
    head = target.head("POST", COLLECTION.format(namespace))
    head += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    before, after = (head + body).split(_PLACEHOLDER)
    return load.Job(before, after, count, warmup, seconds)


def object_path(namespace: str, prefix: str, number: int = 0) -> str:
    """The path of the object the numbered create job made for ``number``."""
    return f"{COLLECTION.format(namespace)}/{prefix}-{number:0{load.WIDTH}d}"


def fill(served: Served, plan: Plan, store: Store, suffix: str = "") -> Figure:
    """Create exactly ``plan.objects`` CustomTasks in the list namespace, all clients at once;
    ``suffix`` ends the label (which server it was, when several are filled)."""
    per_client = plan.objects // plan.clients  # the command line checks it divides evenly
    job = create_job(served.target, LIST_NAMESPACE, "l", count=per_client, seconds=300)
    phase = load.run(served.target, job, plan.clients, served.pid)
    return _figure(f"{store.prefix}creates/s while filling {plan.objects:,}{suffix}", phase, None)


def creates(
    served: Served,
    plan: Plan,
    store: Store,
    *,
    suffix: str = "",
    goal: Goal | None = None,
    names: str = "c",
) -> Figure:
    """Time-bounded creates of distinct names in their own namespace; each round on the same
    server needs its own ``names`` (the prefix of the names), or it would meet its own."""
    job = create_job(
        served.target, CREATE_NAMESPACE, names, warmup=plan.warmup, seconds=plan.seconds
    )
    phase = load.run(served.target, job, plan.clients, served.pid)
    return _figure(f"{store.prefix}creates/s{suffix}", phase, goal)


def gets(served: Served, plan: Plan, path: str, label: str, goal: Goal | None) -> Figure:
    """Time-bounded GETs of one path by every client."""
    job = load.Job(served.target.get(path), warmup=plan.warmup, seconds=plan.seconds)
    return _figure(label, load.run(served.target, job, plan.clients, served.pid), goal)


def lists(
    served: Served, plan: Plan, store: Store, suffix: str = "", *, judged: bool = True
) -> Figure:
    """One client, one connection: unpaged JSON lists of the namespace, back to back;
    ``suffix`` ends the label, as for :func:`fill`; only a ``judged`` one has a target."""
    request = served.target.get(COLLECTION.format(LIST_NAMESPACE))
    conn = Connection(served.target)
    try:
        first = conn.exchange(request, keep=True)  # also the warm-up
        replies = [first, conn.exchange(request)]
        latencies = []
        for _ in range(plan.lists):
            began = time.monotonic()
            replies.append(conn.exchange(request))
            latencies.append(time.monotonic() - began)
    finally:
        conn.close()
    failed = [r for r in replies if r.status != 200]
    failure = f"HTTP {failed[0].status}: {failed[0].body[:300]!r}" if failed else ""
    items = first.body.count(b'"uid":')
    note = f"{plan.lists} sequential lists, {items:,} items, {first.size / 1e6:.1f} MB each"
    label = f"{store.prefix}list of {plan.objects:,} (median){suffix}"
    median = percentile(latencies, 50) * 1000
    return Figure(
        label,
        median,
        "ms",
        latencies,
        len(failed),
        store.list_ms if judged else None,
        note=note,
        failure=failure,
    )


def _figure(label: str, phase: load.Phase, goal: Goal | None) -> Figure:
    outcome = phase.outcome
    note = f"{outcome.ok:,} ok in {outcome.elapsed:.1f} s"
    if outcome.reconnects:
        note += f", {outcome.reconnects} reconnects"
    failure = ""
    if outcome.errors:
        statuses = ", ".join(f"{s or 'transport'}: {n}" for s, n in outcome.statuses.items())
        failure = f"{statuses}; first: {outcome.failure}"
    return Figure(
        label,
        phase.rate,
        "/s",
        outcome.latencies,
        outcome.errors,
        goal,
        phase.usage,
        phase.client_cores,
        note,
        failure,
        int(skewed(phase.usage)),
    )
