"""The serving phase: which gunicorn model keeps both cores busy whatever the connection split.

Each model runs twice side by side: the server as deployed (a fake cluster, SQLite) and the
constant-JSON app (:mod:`bench.constant`), under the same command line and settings, so the
second is that model's ceiling. In every round, each model in turn (the first one changing
from round to round) is measured by fresh clients, which connect anew and so land on the
workers afresh: the server's gets, the ceiling's gets, the server's ``/livez`` and creates.
Each round prints the connections per worker and both rates; the summary gives each model's
median and worst round, as a share of the ceiling measured in that same round.

The models (``--workers`` is the run's, 2 by default):

- ``shipped``: gthread as gunicorn ships it, all workers accepting from one socket by chance,
  each request of a kept-alive connection handed from the main thread to a pool thread;
- ``more-workers``: twice as many such workers;
- ``reuse-port``: one listening socket per worker (gunicorn's ``--reuse-port``), the kernel
  hashing each connection to one;
- ``balanced``: a worker accepts only while no peer holds fewer connections
  (:mod:`proxy.balance`);
- ``lingering`` (deployed): balanced, and a pool thread serves its connection's next request
  if it begins within 50 ms (:class:`proxy.worker.StatusWorker`);
- ``gevent``: the gevent worker, accepting by chance;
- ``hybrid``: twice as many workers, balanced, lingering.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench import load
from bench.report import Figure, Goal, percentile, table
from bench.scenarios import Plan, create_job, object_path
from bench.serve import CONSTANT_APP, REAL_APP, Launch, Served

NAMESPACE = "bench-list"
GETS_MEDIAN, GETS_WORST = Goal(0.75, at_least=True), Goal(0.6, at_least=True)
GETS_P99_MS = Goal(15, at_least=False)
SHIPPED = {  # gthread as gunicorn ships it: workers accept by chance, no linger
    "APISERVER_BALANCE_CONNECTIONS": "false",
    "APISERVER_KEEPALIVE_LINGER_SECONDS": "0",
}
NO_LINGER = {"APISERVER_KEEPALIVE_LINGER_SECONDS": "0"}
MEASURES = ("gets", "ceiling", "livez", "creates")


@dataclass(frozen=True, slots=True)
class Model:
    """A way of serving: gunicorn options and settings, and workers per the run's workers."""

    key: str
    label: str
    options: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    workers_factor: int = 1
    deployed: bool = False


MODELS = (
    Model("shipped", "gthread as shipped", env=SHIPPED),
    Model("more-workers", "gthread, 2x workers", env=SHIPPED, workers_factor=2),
    Model("reuse-port", "gthread, reuse_port: a socket per worker", ("--reuse-port",), SHIPPED),
    Model("balanced", "gthread, balanced accept", env=NO_LINGER),
    Model("lingering", "gthread, balanced accept, linger", deployed=True),
    Model("gevent", "gevent", ("--worker-class", "gevent"), SHIPPED),
    Model("hybrid", "gthread, 2x workers, balanced accept, linger", workers_factor=2),
)


@dataclass(slots=True)
class Measured:
    """Each model's rounds: one figure per measure per round."""

    model: Model
    workers: int
    rounds: dict[str, list[Figure]] = field(default_factory=lambda: {m: [] for m in MEASURES})

    def ratios(self, measure: str) -> list[float]:
        """Each round's ``measure`` rate over the ceiling's of the same round."""
        return [
            f.value / c.value if c.value else 0.0
            for f, c in zip(self.rounds[measure], self.rounds["ceiling"], strict=True)
        ]


def run(
    directory: Path,
    launch: Launch,
    plan: Plan,
    say: Callable[[str], None],
    check: Callable[[str, Served, int], None],
    models: Sequence[Model] = MODELS,
) -> list[Measured]:
    """Every model's rounds, from servers of its own under ``directory``."""
    with ExitStack() as stack:
        servers: dict[str, tuple[Served, Served]] = {}
        results = []
        for model in models:
            workers = launch.workers * model.workers_factor
            say(f"serving: starting {model.label} ({workers} workers)")
            real, ceiling = (
                stack.enter_context(
                    Launch(workers, launch.options).serve(
                        directory / f"{model.key}-{name}",
                        app,
                        *model.options,
                        cluster=app == REAL_APP,
                        env=model.env,
                    )
                )
                for name, app in (("server", REAL_APP), ("constant", CONSTANT_APP))
            )
            _create(real, "s", 1)
            servers[model.key] = real, ceiling
            results.append(Measured(model, workers))
        for number in range(plan.rounds):
            shift = number % len(results)
            for measured in [*results[shift:], *results[:shift]]:
                say(f"serving round {number + 1}/{plan.rounds}: {measured.model.label}")
                real, ceiling = servers[measured.model.key]
                measured.rounds["gets"].append(_gets(real, plan, object_path(NAMESPACE, "s")))
                measured.rounds["ceiling"].append(_gets(ceiling, plan, object_path(NAMESPACE, "s")))
                measured.rounds["livez"].append(_gets(real, plan, "/livez"))
                measured.rounds["creates"].append(_creates(real, plan, f"r{number}"))
        for measured in results:
            real, ceiling = servers[measured.model.key]
            check(f"serving {measured.model.key} server", real, measured.workers)
            check(f"serving {measured.model.key} constant", ceiling, measured.workers)
    return results


def _create(served: Served, prefix: str, count: int) -> None:
    job = create_job(served.target, NAMESPACE, prefix, count=count, seconds=30)
    load.run(served.target, job, 1, served.pid)


def _gets(served: Served, plan: Plan, path: str) -> Figure:
    job = load.Job(served.target.get(path), warmup=plan.warmup, seconds=plan.seconds)
    return _figure(load.run(served.target, job, plan.clients, served.pid))


def _creates(served: Served, plan: Plan, names: str) -> Figure:
    job = create_job(served.target, NAMESPACE, names, warmup=plan.warmup, seconds=plan.seconds)
    return _figure(load.run(served.target, job, plan.clients, served.pid))


def _figure(phase: load.Phase) -> Figure:
    outcome = phase.outcome
    return Figure("", phase.rate, "/s", outcome.latencies, outcome.errors, usage=phase.usage)


def rounds_report(results: Sequence[Measured]) -> str:
    """Every round of every model: the splits and the rates."""
    rows = []
    for measured in results:
        for number, figures in enumerate(zip(*measured.rounds.values(), strict=True)):
            gets, ceiling, livez, creates = figures
            rows.append(
                [
                    measured.model.label if number == 0 else "",
                    str(number + 1),
                    f"{gets.value:,.0f} {gets.spread}",
                    f"{ceiling.value:,.0f} {ceiling.spread}",
                    f"{gets.value / ceiling.value:.2f}" if ceiling.value else "-",
                    f"{livez.value:,.0f} {livez.spread}",
                    f"{creates.value:,.0f} {creates.spread}",
                ]
            )
    header = ["model", "round", "gets/s [split]", "ceiling/s", "ratio", "/livez/s", "creates/s"]
    return "Serving models, every round:\n" + table(header, rows, right={1, 2, 3, 4, 5, 6})


def summary_report(results: Sequence[Measured]) -> str:
    """Each model's median and worst round, and the deployed model's verdicts."""
    rows = []
    for measured in results:
        gets, livez = measured.ratios("gets"), measured.ratios("livez")
        creates = [f.value for f in measured.rounds["creates"]]
        latencies = [x for f in measured.rounds["gets"] for x in f.latencies]
        p99 = percentile(latencies, 99) * 1000
        errors = sum(f.errors for figures in measured.rounds.values() for f in figures)
        verdicts = ""
        if measured.model.deployed:
            verdicts = " ".join(
                "PASS" if goal.met(value) else "FAIL"
                for goal, value in (
                    (GETS_MEDIAN, statistics.median(gets)),
                    (GETS_WORST, min(gets)),
                    (GETS_P99_MS, p99),
                )
            )
        rows.append(
            [
                f"{measured.model.label} ({measured.workers} workers)"
                + (" *" if measured.model.deployed else ""),
                f"{statistics.median(gets):.2f} / {min(gets):.2f}",
                f"{statistics.median(f.value for f in measured.rounds['gets']):,.0f}",
                f"{statistics.median(f.value for f in measured.rounds['ceiling']):,.0f}",
                f"{p99:.1f}",
                f"{statistics.median(livez):.2f} / {min(livez):.2f}",
                f"{statistics.median(creates):,.0f} / {min(creates):,.0f}",
                str(errors),
                verdicts,
            ]
        )
    header = [
        "model (* deployed)",
        "gets/ceiling median / worst",
        "gets/s",
        "ceiling/s",
        "gets p99 ms",
        "/livez/ceiling median / worst",
        "creates/s median / worst",
        "errors",
        f"verdicts ({GETS_MEDIAN}, {GETS_WORST}, p99 {GETS_P99_MS} ms)",
    ]
    return "Serving models, per model:\n" + table(header, rows, right={1, 2, 3, 4, 5, 6, 7})


def failed(results: Sequence[Measured]) -> bool:
    """Whether any request of the phase failed."""
    return any(f.errors for m in results for figures in m.rounds.values() for f in figures)
