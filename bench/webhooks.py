"""The webhook phase: what a validating admission webhook costs a create, over HTTPS from
8 clients, on the server as deployed (gunicorn, 2 workers, a fake cluster).

The webhook (:class:`tests.fakes.webhooks.FakeWebhook`, HTTPS on loopback) runs in a
process of its own, so that its share of the CPU can be told from the server's. Rounds of
creates alternate between the webhook configured (it allows everything) and not configured,
on one server; then the webhook answers after 50 ms, for the latency a slow webhook adds.
The targets are issue 16's.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from bench import cpu, load
from bench.report import Goal, percentile
from bench.scale import Line
from bench.scenarios import create_job
from bench.serve import REAL_APP, Served, serve
from tests.fakes.objects import VALIDATING_WEBHOOKS

NAMESPACE = "bench-webhooks"
CLIENTS = 8
ROUNDS = 3
WARMUP, SECONDS = 1.0, 4.0
SLOW_SECONDS = 0.05
RATIO = Goal(0.6, at_least=True)
CONFIGURATION = "bench-allow"


@dataclass(frozen=True, slots=True)
class Webhook:
    """The webhook process: its pid, where it listens, the calls it answered, its delay."""

    pid: int
    client_config: dict[str, Any]
    calls: Synchronized[int]
    delay: Synchronized[float]


def _serve_webhook(
    found: Any, stop: Any, calls: Synchronized[int], delay: Synchronized[float]
) -> None:
    """In the webhook's process: answer every review with "allowed", ``delay`` seconds on."""
    from tests.fakes.webhooks import FakeWebhook

    def allow(request: dict[str, Any]) -> dict[str, Any]:
        with calls.get_lock():
            calls.value += 1
        if delay.value:
            time.sleep(delay.value)
        return {"allowed": True}

    with FakeWebhook(allow) as webhook:
        found.put(webhook.client_config("/allow"))
        stop.wait()


@contextmanager
def _webhook() -> Iterator[Webhook]:
    context = multiprocessing.get_context("spawn")
    found = context.Queue()
    stop = context.Event()
    calls = context.Value("q", 0)
    delay = context.Value("d", 0.0)
    process = context.Process(target=_serve_webhook, args=(found, stop, calls, delay), daemon=True)
    process.start()
    try:
        yield Webhook(process.pid or 0, found.get(timeout=60), calls, delay)
    finally:
        stop.set()
        process.join(10)


def _configure(served: Served, webhook: Webhook | None) -> None:
    """Configure the webhook in the cluster (None: remove its configuration)."""
    cluster = served.cluster
    assert cluster is not None
    if webhook is None:
        if cluster.objects.get(VALIDATING_WEBHOOKS, "", CONFIGURATION) is not None:
            cluster.objects.delete(VALIDATING_WEBHOOKS, "", CONFIGURATION)
        return
    hook = {
        "name": "allow.bench.example.com",
        "clientConfig": webhook.client_config,
        "rules": [
            {
                "apiGroups": ["search.task.example.example.com"],
                "apiVersions": ["v1"],
                "operations": ["CREATE"],
                "resources": ["customtasks"],
            }
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "failurePolicy": "Fail",
    }
    cluster.objects.put(
        VALIDATING_WEBHOOKS, {"metadata": {"name": CONFIGURATION}, "webhooks": [hook]}
    )


def _settle(served: Served, webhook: Webhook, called: bool, tag: str) -> None:
    """Create until the server calls the webhook (or, not ``called``, no longer does)."""
    deadline = time.monotonic() + 30
    for n in range(10_000):
        seen = webhook.calls.value
        _probe(served, f"{tag}-{n}")
        if (webhook.calls.value > seen) == called:
            return
        assert time.monotonic() < deadline, "the configuration not applied within 30 s"
        time.sleep(0.1)


def _round(served: Served, names: str) -> load.Phase:
    job = create_job(served.target, NAMESPACE, names, warmup=WARMUP, seconds=SECONDS)
    return load.run(served.target, job, CLIENTS, served.pid)


def _probe(served: Served, names: str) -> None:
    """One create, so that the server's answer shows what it has seen."""
    job = create_job(served.target, NAMESPACE, names, count=1, warmup=0.0, seconds=30)
    load.run(served.target, job, 1, served.pid)


def run(directory: Path, say: Callable[[str], None]) -> list[Line]:
    """The phase's figures, from a server and a webhook of its own under ``directory``."""
    say(f"webhooks: creates from {CLIENTS} clients with and without a validating webhook")
    with serve(directory / "webhooks", REAL_APP, cluster=True) as served, _webhook() as webhook:
        rates: dict[bool, list[float]] = {True: [], False: []}
        shares: list[float] = []
        for number in range(ROUNDS):
            for called in (False, True):
                _configure(served, webhook if called else None)
                _settle(served, webhook, called, f"p{number}-{int(called)}")
                before, calls = cpu.tree_seconds(webhook.pid)[0], webhook.calls.value
                phase = _round(served, f"r{number}-{int(called)}")
                spent = cpu.tree_seconds(webhook.pid)[0] - before
                rates[called].append(phase.rate)
                answered = webhook.calls.value - calls
                if called and answered and phase.usage is not None and phase.outcome.ok:
                    per_call = spent / answered
                    per_create = phase.usage.server * phase.outcome.elapsed / phase.outcome.ok
                    shares.append(per_call / (per_call + per_create))
        webhook.delay.value = SLOW_SECONDS
        slow = _round(served, "slow")
        webhook.delay.value = 0.0
    none, hooked = statistics.median(rates[False]), statistics.median(rates[True])
    return [
        Line(
            "creates/s, no webhook",
            none,
            "/s",
            note=f"median of {ROUNDS} rounds, {CLIENTS} clients",
        ),
        Line(
            "creates/s with a validating webhook that allows all / with none",
            hooked / none,
            "x",
            RATIO,
            note=f"{hooked:,.0f} / {none:,.0f}",
        ),
        Line(
            "the webhook's share of the CPU a create costs (server and webhook)",
            statistics.median(shares) * 100 if shares else float("nan"),
            "%",
            note="CPU seconds per call of its own process, against the server's per create",
        ),
        Line(
            f"create p99 with a webhook answering in {SLOW_SECONDS * 1000:.0f} ms",
            percentile(slow.outcome.latencies, 99) * 1000,
            "ms",
            note=f"p50 {percentile(slow.outcome.latencies, 50) * 1000:.0f} ms, "
            f"{slow.rate:,.0f} creates/s",
        ),
    ]


def title() -> str:
    return "Webhooks: a validating admission webhook on creates (gunicorn, TLS, 8 clients)"
