"""``python -m bench``: run every scenario against fresh servers and print the tables.

All servers (the real one, the constant-JSON one, each under gthread and gevent) run side by
side, each with a fresh directory, PKI and database; idle, they cost nothing, and it lets
their gets run in interleaved rounds. Order matters: the list namespace is filled first (so
gets and lists see N objects) and the time-bounded creates run last, in their own namespace.

The real servers run as deployed: against a cluster (a fake kube-apiserver each, in this
process), which publishes their client CA and answers their SubjectAccessReviews. The main
one's gets are measured twice per round on the same server, as ``system:masters`` (no review)
and as an ordinary user whose reviews the server caches, to price authorization.

What the server's guards cost is measured the same way: a server started with the in-flight
limits off (both 0), and with ``--baseline REV`` the server of an older revision (exported by
:mod:`bench.baseline`, run from its own Procfile), are filled like the main one, and their
gets and creates run in the same interleaved rounds as the main server's; the report divides
the main figures by theirs. With ``--control`` a server identical to the main one is compared
the same way: its ratios are the noise of the run.

The serving phase (:mod:`bench.serving`) runs the server and the constant-JSON app side by
side under each gunicorn model (as shipped, more workers, ``reuse_port``, balanced accept,
linger, gevent, a hybrid) and prints every round's connection split and rates, and each
model's median and worst round against its own ceiling.

The PostgreSQL phase (:mod:`bench.postgres`) runs the main server's fill, gets, list and
creates again, by the same code, on a server that differs only by its database: a throwaway
PostgreSQL on loopback. Its figures are judged against PostgreSQL's own targets and divided
by SQLite's of the same run; its gets take turns with those of a server on SQLite started
beside it, whose ratio (target 0.8) is read from the same rounds.

The scale phase (:mod:`bench.scale`) fills stores of its own to a million objects by their
bulk path and measures reads over HTTPS and the size left by a million updates, on SQLite then
on a throwaway PostgreSQL.

The search phase (:mod:`bench.search`) indexes 100,000 documents in stores of its own and
times selective and broad queries against a ``LIKE`` scan, and creates with and without the
index.

The watch-list phase (:mod:`bench.watchlist`) fills a store of its own with 10,000 objects
and times, in alternating rounds on one server, a watch with ``sendInitialEvents=true`` (how a
kube 1.35 informer starts) against the LIST of the same objects: to the first object and to
the whole state.

The admission phase (:mod:`bench.admission`) times creates, in process and in alternation, on
three apps whose fake clusters hold no policy, one matching ValidatingAdmissionPolicy of three
validations, and twenty policies of which one matches; and one CEL evaluation.

The webhook phase (:mod:`bench.webhooks`) times creates from 8 clients on a server of its
own, in rounds with and without a validating admission webhook (a process of its own on
loopback, which allows everything), and the create latency when the webhook takes 50 ms.

The observability phase (:mod:`bench.observability`) times gets and creates from 8 clients on
two servers of its own, one with the metrics and a Metadata audit log on, one with neither,
in alternating rounds; then scrapes of ten workers' worth of metrics files.

The controller phase (:mod:`bench.controller`) runs the Task controller as deployed against a
fake cluster of 10,000 Tasks no controller has seen, with 1 worker then 4: the rate of its
first reconciles and the latency of a live change meanwhile.

The watch phase (:mod:`bench.watch`) runs last, alone, on a server of its own started with
the threads its watches need: 1,000 watches while changes are written, delivery latency,
share delivered and the server's memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import (
    admission,
    baseline,
    combined,
    controller,
    observability,
    ownership,
    postgres,
    scale,
    scenarios,
    search,
    serving,
    watch,
    watchlist,
    webhooks,
)
from bench.report import (
    Figure,
    Goal,
    Ratio,
    Reviews,
    cpu_table,
    figures_table,
    flagged,
    median_round,
    pairs_line,
    per_core,
    ratios_table,
    reviews_table,
)
from bench.scenarios import LIST_NAMESPACE, SQLITE, Plan, Store
from bench.serve import CONSTANT_APP, REAL_APP, SAR_USER, Launch, Served
from bench.watch import Watched, WatchPlan
from bench.wire import Connection
from devtools.launch import ROOT
from proxy.settings import Settings
from tests.support.postgres import create_database, postgres_server

GEVENT = ("--worker-class", "gevent")
SAR_RATIO = Goal(0.85, at_least=True)  # gets of a reviewed user against system:masters
COST_RATIO = Goal(0.95, at_least=True)  # the limiter or a revision's changes: under 5%
LIMITS_OFF = {
    "APISERVER_MAX_REQUESTS_INFLIGHT": "0",
    "APISERVER_MAX_MUTATING_REQUESTS_INFLIGHT": "0",
}
WATCH_SPARE_THREADS = 64  # threads beyond the watches: writes, lists, probes
OTHER_LOAD = 0.25  # cores used by neither server nor clients beyond which figures are suspect
_STARTED = time.monotonic()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; bad combinations fail before any server starts."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the server over mTLS against its targets and its stack's ceiling.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--objects", type=int, default=10_000, help="objects in the list")
    parser.add_argument("--lists", type=int, default=20, help="timed lists (median quoted)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of gets (median quoted)"
    )
    parser.add_argument(
        "--auth-rounds",
        type=int,
        default=5,
        help="rounds of the main gets and of the gets divided by them (reviewed user, limits "
        "off, --baseline; at least --rounds): they go on alone after --rounds, as their ratios "
        "are small differences between noisy figures",
    )
    parser.add_argument("--clients", type=int, default=8, help="client processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--no-gevent-server", action="store_true", help="skip the real server under gevent"
    )
    parser.add_argument("--keep", type=Path, help="keep logs and databases in this directory")
    parser.add_argument(
        "--gunicorn-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="extra gunicorn option for every server, e.g. --gunicorn-option=--reuse-port",
    )
    compare = parser.add_argument_group(
        "what the guards cost: servers compared with the main one in its own rounds"
    )
    compare.add_argument(
        "--baseline",
        metavar="REV",
        help="also run this git revision's server (exported with git archive) and divide the "
        "main gets/s and creates/s by its own",
    )
    compare.add_argument(
        "--control",
        action="store_true",
        help="also run a server identical to the main one: how far its figures differ from "
        "the main ones is what this host lets the comparison resolve",
    )
    compare.add_argument(
        "--compare-only",
        action="store_true",
        help="run only the main server, the one with in-flight limits off and the --baseline: "
        "fill, gets, list, creates",
    )
    served = parser.add_argument_group(
        "serving phase (its own servers): gunicorn models side by side, each with its ceiling"
    )
    served.add_argument("--no-serving", action="store_true", help="skip the serving phase")
    served.add_argument("--serving-only", action="store_true", help="run only this phase")
    served.add_argument(
        "--serving-models",
        default=",".join(m.key for m in serving.MODELS),
        help="the models compared, comma-separated",
    )
    combined = parser.add_argument_group("combinedtasks phase (its own servers and clusters)")
    combined.add_argument("--no-combined", action="store_true", help="skip the phase")
    combined.add_argument("--combined-only", action="store_true", help="run only this phase")
    pg = parser.add_argument_group("PostgreSQL phase (its own PostgreSQL and server)")
    pg.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL phase")
    pg.add_argument("--postgres-only", action="store_true", help="run only the PostgreSQL phase")
    big = parser.add_argument_group(
        "scale phase (its own stores and servers): a namespace of a million objects, the churn"
    )
    big.add_argument("--no-scale", action="store_true", help="skip the scale phase")
    big.add_argument("--scale-only", action="store_true", help="run only the scale phase")
    big.add_argument("--scale-objects", type=int, default=1_000_000, help="objects filled")
    big.add_argument("--scale-base", type=int, default=10_000, help="objects of the first read")
    big.add_argument(
        "--scale-churn", type=int, default=1_000_000, help="updates of the churn (on 10,000)"
    )
    found = parser.add_argument_group("search phase (its own stores): 100,000 indexed documents")
    found.add_argument("--no-search", action="store_true", help="skip the search phase")
    found.add_argument("--search-only", action="store_true", help="run only the search phase")
    owned = parser.add_argument_group("ownership phase (in process): managedFields and apply")
    owned.add_argument("--no-ownership", action="store_true", help="skip the ownership phase")
    owned.add_argument("--ownership-only", action="store_true", help="run only the ownership phase")
    admitted = parser.add_argument_group("admission phase (in process): policies on creates")
    admitted.add_argument("--no-admission", action="store_true", help="skip the admission phase")
    admitted.add_argument(
        "--admission-only", action="store_true", help="run only the admission phase"
    )
    hooked = parser.add_argument_group("webhook phase (its own server): a validating webhook")
    hooked.add_argument("--no-webhooks", action="store_true", help="skip the webhook phase")
    hooked.add_argument("--webhooks-only", action="store_true", help="run only the webhook phase")
    seen = parser.add_argument_group("observability phase (its own servers): metrics, audit")
    seen.add_argument("--no-observability", action="store_true", help="skip the phase")
    seen.add_argument("--observability-only", action="store_true", help="run only this phase")
    ruled = parser.add_argument_group("controller phase (its own fake clusters and processes)")
    ruled.add_argument("--no-controller", action="store_true", help="skip the controller phase")
    ruled.add_argument(
        "--controller-only", action="store_true", help="run only the controller phase"
    )
    listed = parser.add_argument_group(
        "watch-list phase (its own store and server): a watch-list against a LIST"
    )
    listed.add_argument("--no-watchlist", action="store_true", help="skip the watch-list phase")
    listed.add_argument(
        "--watchlist-only", action="store_true", help="run only the watch-list phase"
    )
    listed.add_argument(
        "--watchlist-objects", type=int, default=10_000, help="objects listed and watched"
    )
    listed.add_argument(
        "--watchlist-rounds", type=int, default=5, help="rounds of each (median quoted)"
    )
    watch = parser.add_argument_group("watch phase (its own server, after the others)")
    watch.add_argument("--no-watch", action="store_true", help="skip the watch phase")
    watch.add_argument("--watch-only", action="store_true", help="run only the watch phase")
    watch.add_argument("--watchers", type=int, default=1000, help="concurrent watches")
    watch.add_argument("--watch-rate", type=float, default=100.0, help="changes written per s")
    watch.add_argument("--watch-seconds", type=float, default=10.0, help="seconds of writes")
    watch.add_argument(
        "--watch-processes", type=int, default=4, help="client processes sharing the watches"
    )
    watch.add_argument(
        "--watch-drain",
        type=float,
        default=20.0,
        help="longest wait after the last write for every watch to receive every change",
    )
    watch.add_argument(
        "--watch-threads",
        type=int,
        default=0,
        help="APISERVER_THREADS of the watch server (0: enough for every watch on one worker)",
    )
    args = parser.parse_args(argv)
    onlys = (args.watch_only, args.postgres_only, args.combined_only, args.compare_only)
    if (
        sum(
            (
                *onlys,
                args.serving_only,
                args.scale_only,
                args.search_only,
                args.ownership_only,
                args.admission_only,
                args.webhooks_only,
                args.observability_only,
                args.controller_only,
                args.watchlist_only,
            )
        )
        > 1
    ):
        parser.error("only one --X-only at a time")
    if args.baseline is not None:
        if (
            args.watch_only
            or args.serving_only
            or args.postgres_only
            or args.combined_only
            or args.scale_only
            or args.search_only
            or args.ownership_only
            or args.admission_only
            or args.webhooks_only
            or args.observability_only
            or args.controller_only
            or args.watchlist_only
        ):
            parser.error("--baseline is measured with the main server: not with another --X-only")
        try:
            baseline.resolve(ROOT, args.baseline)
        except ValueError as ex:
            parser.error(f"--baseline {args.baseline}: {ex}")
    if (
        (args.no_watch and args.watch_only)
        or (args.no_serving and args.serving_only)
        or (args.no_postgres and args.postgres_only)
        or (args.no_combined and args.combined_only)
        or (args.no_scale and args.scale_only)
        or (args.no_search and args.search_only)
        or (args.no_ownership and args.ownership_only)
        or (args.no_admission and args.admission_only)
        or (args.no_webhooks and args.webhooks_only)
        or (args.no_observability and args.observability_only)
        or (args.no_controller and args.controller_only)
        or (args.no_watchlist and args.watchlist_only)
    ):
        parser.error("--no-X and --X-only exclude each other")
    if (
        min(args.watchers, args.watch_processes) < 1
        or min(args.watch_rate, args.watch_seconds) <= 0
        or args.watch_drain < 0
        or args.watch_threads < 0
        or args.watch_rate * args.watch_seconds >= 10**6
    ):
        parser.error(
            "--watchers, --watch-processes, --watch-rate, --watch-seconds must be positive "
            "(fewer than a million changes)"
        )
    known = {m.key for m in serving.MODELS}
    if unknown := set(args.serving_models.split(",")) - known:
        parser.error(f"--serving-models: unknown {sorted(unknown)}; known: {sorted(known)}")
    if min(args.watchlist_objects, args.watchlist_rounds) < 1:
        parser.error("--watchlist-objects and --watchlist-rounds must be positive")
    if not 0 < args.scale_base < args.scale_objects or args.scale_churn < 1:
        parser.error("--scale-base must be positive and below --scale-objects; --scale-churn >= 1")
    if args.clients < 1 or args.objects < 1 or args.objects % args.clients:
        parser.error("--objects must be a positive multiple of --clients")
    if (
        min(args.lists, args.rounds, args.auth_rounds, args.workers) < 1
        or args.seconds <= 0
        or args.warmup < 0
    ):
        parser.error("--lists, --rounds, --auth-rounds, --workers, --seconds must be positive")
    return args


def say(message: str) -> None:
    """Progress on stderr, so a long run visibly advances."""
    print(f"[{time.monotonic() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


@contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    """A directory for servers' PKI, databases and logs: kept if asked, else temporary."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        yield Path(tmp)


class Log:
    """Problems found in the servers' logs after each run."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.lines: list[str] = []

    def check(self, name: str, served: Served, workers: int | None = None) -> None:
        """Note tracebacks, killed workers and replacement workers in ``served``'s log (run
        with ``workers``, the run's by default)."""
        problems = served.problems()
        if problems:
            self.lines.append(f"{name}: {len(problems)} problem line(s), first: {problems[0]}")
        configured = workers or self.workers
        if (boots := served.worker_boots()) > configured:
            self.lines.append(f"{name}: {boots} workers booted for {configured} configured")


@dataclass(frozen=True, slots=True)
class Run:
    """What every scenario of one run shares."""

    root: Path
    plan: Plan
    launch: Launch
    log: Log
    review_ttl: float  # seconds a worker caches a SubjectAccessReview's answer
    auth_rounds: int  # rounds of the masters / reviewed-user pair (at least plan.rounds)


@dataclass(frozen=True, slots=True)
class Contender:
    """Gets/s measured in rounds: on which server, as whom, and how that server is started.

    A contender with ``server`` set measures the server of that key (started by it) with its
    own client certificate ``user``; the others start their own server and act as admin, from
    the source tree ``root`` (an older revision's, say) with ``env`` over the settings; ``app``
    None is that tree's Procfile's own. ``paired`` marks the main gets and those divided by
    them: small differences between noisy figures, they run ``auth_rounds`` rounds.

    A contender that ``writes`` is filled like the main server and has its creates measured in
    rounds too, its figures' labels ending with ``suffix``; ``versus`` names the ratio of the
    main server's gets and creates to its own (none if empty).
    """

    key: str
    label: str
    app: str | None
    options: tuple[str, ...] = ()
    goal: Goal | None = None
    cluster: bool = False
    server: str = ""
    user: tuple[str, tuple[str, ...]] | None = None
    paired: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    root: Path = ROOT
    writes: bool = False
    suffix: str = ""
    versus: str = ""

    @property
    def server_key(self) -> str:
        return self.server or self.key

    def figure_key(self, scenario: str) -> str:
        """The key of its figure of ``scenario`` ("fill", "list", "creates"): the main
        server's is the scenario's name, the others' end like their contender's key."""
        return scenario + self.key.removeprefix("gets")


MAIN = Contender(
    "gets",
    "gets/s (system:masters)",
    REAL_APP,
    goal=scenarios.GETS,
    cluster=True,
    paired=True,
    writes=True,
)
UNLIMITED = Contender(
    "gets-unlimited",
    "gets/s (system:masters, in-flight limits off)",
    REAL_APP,
    cluster=True,
    paired=True,
    env=LIMITS_OFF,
    writes=True,
    suffix=" (in-flight limits off)",
    versus="in-flight limits on / off",
)
CONTROL = Contender(
    "gets-control",
    "gets/s (system:masters, control)",
    REAL_APP,
    cluster=True,
    paired=True,
    writes=True,
    suffix=" (control)",
    versus="main / an identical server (control)",
)
"""A second main server: its ratios are the run's noise, which a cost must exceed to be seen."""
CONTENDERS = (
    MAIN,
    UNLIMITED,
    Contender(
        "gets-sar",
        f"gets/s ({SAR_USER[0]}, cached SAR)",
        REAL_APP,
        server="gets",
        user=SAR_USER,
        paired=True,
    ),
    Contender("constant", "constant JSON gets/s (gthread)", CONSTANT_APP),
    Contender("constant-gevent", "constant JSON gets/s (gevent)", CONSTANT_APP, GEVENT),
    Contender("gets-gevent", "gets/s (server under gevent)", REAL_APP, GEVENT, cluster=True),
)
ORDER = (
    "creates",
    "creates-control",
    "creates-unlimited",
    "creates-baseline",
    "fill",
    "fill-control",
    "fill-unlimited",
    "fill-baseline",
    "gets",
    "gets-control",
    "gets-unlimited",
    "gets-baseline",
    "gets-sar",
    "list",
    "list-control",
    "list-unlimited",
    "list-baseline",
    "constant",
    "constant-gevent",
    "gets-gevent",
)
GET_PATH = scenarios.object_path(LIST_NAMESPACE, "l")  # the constant app answers it too


def baseline_contender(source: Path, commit: str) -> Contender:
    """The server of an older revision, exported into ``source``: its own Procfile and
    settings' defaults, this run's environment and cluster, compared like the limits-off one."""
    return Contender(
        "gets-baseline",
        f"gets/s (system:masters, {commit})",
        None,
        cluster=True,
        paired=True,
        root=source,
        writes=True,
        suffix=f" ({commit})",
        versus=f"work tree / {commit}",
    )


def seed(served: Served) -> None:
    """Create the one object the gets read (the list fill does it on the main server)."""
    job = scenarios.create_job(served.target, LIST_NAMESPACE, "l", seconds=0)
    conn = Connection(served.target)
    try:
        created = conn.exchange(job.request(0))
    finally:
        conn.close()
    if created.status != 201:
        raise RuntimeError(f"seeding the object failed: {created}")


@dataclass(frozen=True, slots=True)
class Measured:
    """Every figure of a run, every round of the gets and creates, and the reviews the clusters
    received during the gets rounds."""

    figures: dict[str, Figure]
    rounds: dict[str, list[Figure]]
    reviews: list[Reviews]


def expected_reviews(contender: Contender, figure: Figure, run: Run) -> int:
    """Reviews one round of ``contender`` should cause: one per busy worker per cache window
    for a reviewed user, none for ``system:masters``."""
    if contender.user is None:  # the admin: system:masters
        return 0
    usage = figure.usage
    busy = sum(1 for w in usage.workers if w.connections) if usage else run.launch.workers
    round_seconds = run.plan.warmup + run.plan.seconds
    return busy * max(1, math.ceil(round_seconds / run.review_ttl))


def rotated(contenders: Sequence[Contender], number: int) -> list[Contender]:
    """The order of round ``number`` (from 1): each round starts one further along the list,
    so that every server takes every place in turn and none is always measured first, on a
    host rested by the pause between rounds, or last."""
    shift = (number - 1) % max(1, len(contenders))
    return [*contenders[shift:], *contenders[:shift]]


def get_rounds(
    run: Run, contenders: Sequence[Contender], servers: dict[str, Served]
) -> tuple[dict[str, list[Figure]], list[Reviews]]:
    """Every contender's gets, round after round, interleaved (the paired ones go on alone
    for their extra rounds); and the reviews each contender on a server with a cluster
    caused in each round."""
    results: dict[str, list[Figure]] = {c.key: [] for c in contenders}
    counts: dict[str, list[int]] = {c.key: [] for c in contenders}
    expected: dict[str, list[int]] = {c.key: [] for c in contenders}
    total = max([run.plan.rounds, *(run.auth_rounds for c in contenders if c.paired)])
    for number in range(1, total + 1):
        active = [c for c in contenders if number <= run.plan.rounds or c.paired]
        for c in rotated(active, number):
            say(f"round {number}/{total}: {c.label}")
            served = servers[c.server_key]
            if c.user is not None:
                served = served.as_user(*c.user)
            before = served.reviews()
            figure = scenarios.gets(served, run.plan, GET_PATH, c.label, c.goal)
            results[c.key].append(figure)
            counts[c.key].append(served.reviews() - before)
            expected[c.key].append(expected_reviews(c, figure, run))
    reviews = [
        Reviews(c.label, counts[c.key], expected[c.key])
        for c in contenders
        if servers[c.server_key].cluster is not None
    ]
    return results, reviews


def creates_rounds(run: Run, writers: int) -> int:
    """Rounds of creates: as many as the paired gets when servers are compared by them (a
    small difference between noisy figures), else ``--rounds``."""
    return max(run.plan.rounds, run.auth_rounds) if writers > 1 else run.plan.rounds


def create_rounds(
    run: Run, writers: Sequence[Contender], servers: dict[str, Served], store: Store
) -> dict[str, list[Figure]]:
    """The writers' creates, round after round, interleaved as the gets are; each round
    creates names of its own. The main server (the one judged by a gets target) is judged
    by the store's creates target."""
    results: dict[str, list[Figure]] = {c.figure_key("creates"): [] for c in writers}
    total = creates_rounds(run, len(writers))
    for number in range(1, total + 1):
        for c in rotated(writers, number):
            say(f"{store.prefix}creates round {number}/{total}: creates/s{c.suffix}")
            figure = scenarios.creates(
                servers[c.key],
                run.plan,
                store,
                suffix=c.suffix,
                goal=store.creates if c.goal else None,
                names=f"c{number}",
            )
            results[c.figure_key("creates")].append(figure)
    return results


def measure(run: Run, contenders: Sequence[Contender], store: Store) -> Measured:
    """Start every server on ``store``, then fill those that write (seed the others), gets
    in rounds, lists on those that write, and creates last, in rounds."""
    plan = run.plan
    writers = [c for c in contenders if c.writes]
    with ExitStack() as stack:
        servers = {
            c.key: stack.enter_context(
                run.launch.serve(
                    run.root / c.key,
                    c.app,
                    *c.options,
                    cluster=c.cluster,
                    env={**store.env, **c.env},
                    root=c.root,
                )
            )
            for c in contenders
            if not c.server
        }
        say(f"{store.prefix}servers up")
        figures: dict[str, Figure] = {}
        for c in writers:
            say(f"{store.prefix}filling {plan.objects:,} customtasks: {c.key}")
            figures[c.figure_key("fill")] = scenarios.fill(servers[c.key], plan, store, c.suffix)
        for c in contenders:
            if c.app != CONSTANT_APP and not (c.server or c.writes):
                seed(servers[c.key])
        rounds, reviews = get_rounds(run, contenders, servers)
        for c in writers:  # on each, so that the compared servers have the same history
            say(f"{store.prefix}{plan.lists} lists: {c.key}")
            figures[c.figure_key("list")] = scenarios.lists(
                servers[c.key], plan, store, c.suffix, judged=c.goal is not None
            )
        rounds.update(create_rounds(run, writers, servers, store))
        figures.update({key: median_round(each) for key, each in rounds.items()})
        for key, served in servers.items():
            run.log.check(f"{store.prefix}{key}", served)
    keys = sorted(figures, key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER))
    return Measured({key: figures[key] for key in keys}, rounds, reviews)


def print_report(
    measured: Measured, run: Run, contenders: Sequence[Contender], settings: Settings
) -> None:
    """The tables and the log findings, on stdout."""
    figures, rounds = measured.figures, measured.rounds
    ordered = list(figures.values())
    plan, workers = run.plan, run.launch.workers
    extra = " " + " ".join(run.launch.options) if run.launch.options else ""
    paired = ", ".join(c.label for c in contenders if c.paired)
    compared = [c for c in contenders if c.versus]
    print(
        f"\n{plan.clients} client processes x 1 keep-alive mTLS connection, 127.0.0.1; "
        f"{plan.warmup:g} s warm-up + {plan.seconds:g} s per phase; "
        f"gets: median of {plan.rounds} interleaved rounds"
        f" ({max(plan.rounds, run.auth_rounds)} for {paired}); creates: median of "
        f"{creates_rounds(run, len(compared) + 1)} rounds, interleaved across the servers "
        "compared\n"
        f"gunicorn --config proxy/gunicorn.conf.py{extra}: {workers} workers x "
        f"{settings.threads} threads (gthread unless noted); host: {os.cpu_count()} cores "
        "shared by server and clients\n"
        "every real-server phase runs against a fake kube-apiserver (one per server, in the "
        "bench process): it publishes the client CA and answers SubjectAccessReviews, cached "
        f"{run.review_ttl:g} s per worker; system:masters (all phases but one) needs no review, "
        f"{SAR_USER[0]} (O={','.join(SAR_USER[1])}) is reviewed; the constant app has no cluster\n"
        "in-flight limits of the main server: "
        f"{settings.max_requests_inflight} read-only, {settings.max_mutating_requests_inflight} "
        "mutating (0: none); the limits-off server: both 0; "
        + (
            "the control: a second server started as the main one (its ratios are this run's "
            "noise: a smaller cost cannot be told from it); "
            if CONTROL in compared
            else ""
        )
        + (
            "the --baseline: that revision's own server and Procfile (exported by git archive) "
            "in this environment; "
            if any(c.root != ROOT for c in compared)
            else ""
        )
        + "each compared server is filled and listed as the main one\n"
    )
    print(figures_table(ordered), end="\n\n")
    print(cpu_table(ordered, os.cpu_count() or 1), end="\n\n")
    print(ratios_table(ratios(measured, contenders)))
    lines = []
    if "gets-sar" in rounds:
        lines.append(pairs_line(rounds["gets-sar"], rounds["gets"]))
    for c in compared:
        lines.append(pairs_line(rounds["gets"], rounds[c.key]))
        lines.append(pairs_line(rounds["creates"], rounds[c.figure_key("creates")]))
    print("\n".join(lines), end="\n\n")
    print("SubjectAccessReviews received by the fake kube-apiserver during the gets rounds:")
    print(reviews_table(measured.reviews, run.review_ttl), end="\n\n")
    for line in flagged(ordered):
        print(line)
    extra_reviews = [r.label for r in measured.reviews if not r.within_expected]
    if extra_reviews:
        print(
            "warning: more SubjectAccessReviews than one per busy worker per cache window "
            "during: "
            + ", ".join(extra_reviews)
            + " (a round starting within the cache's lifetime of the previous one may open one "
            "more window; otherwise the cache did not hold)"
        )
    busy = [f"{f.label} ({f.other_cores:.2f})" for f in ordered if f.other_cores > OTHER_LOAD]
    if busy:
        print("warning: other work used CPU cores during: " + ", ".join(busy) + "; rerun")


def ratios(measured: Measured, contenders: Sequence[Contender]) -> list[Ratio]:
    """Authorization's price, the server against the stack's ceiling, gevent against gthread,
    and what the in-flight limits and a revision's changes cost (those measured): in
    requests per second, and per second of server CPU (steadier on a busy host)."""
    figures, rounds = measured.figures, measured.rounds
    gets = figures["gets"].value
    rows = []
    if "gets-sar" in figures:
        label = f"gets: {SAR_USER[0]} (cached SAR) / system:masters, same server"
        rows.append(Ratio(label, figures["gets-sar"].value, gets, SAR_RATIO))
    if "constant" in figures:
        constant = figures["constant"].value
        rows.append(Ratio("server gets / constant gets (share of the ceiling)", gets, constant))
        if "constant-gevent" in figures:
            gevent = figures["constant-gevent"].value
            rows.append(Ratio("constant gets: gevent / gthread", gevent, constant))
    if "gets-gevent" in figures:
        rows.append(Ratio("server gets: gevent / gthread", figures["gets-gevent"].value, gets))
    rows.append(Ratio("creates / gets (server)", figures["creates"].value, gets))
    for c in contenders:
        if c.versus:
            goal = None if c is CONTROL else COST_RATIO  # the control measures the noise
            for scenario in ("gets", "creates"):
                key = c.figure_key(scenario)
                rows.append(
                    Ratio(
                        f"{scenario}/s: {c.versus}",
                        figures[scenario].value,
                        figures[key].value,
                        goal,
                    )
                )
                rows.append(
                    Ratio(
                        f"{scenario} per server CPU second: {c.versus}",
                        per_core(rounds[scenario]),
                        per_core(rounds[key]),
                        goal,
                    )
                )
    return rows


def postgres_phase(run: Run) -> tuple[Measured, str]:
    """The main server's phases again on a throwaway PostgreSQL, judged by PostgreSQL's targets;
    and which server it was, with its settings. Its gets are system:masters' only (as many
    rounds as on SQLite, for a fair ratio): authorization costs the same on either store.
    A server on SQLite takes turns with it in the gets rounds, so that their ratio is read
    from rounds of the same minutes on this shared host, not from phases minutes apart."""
    with postgres.database() as (store, server):
        say(server)
        masters = CONTENDERS[0]
        gets = dataclasses.replace(
            masters, label=f"{store.prefix}{masters.label}", goal=postgres.GETS
        )
        on_sqlite = dataclasses.replace(
            masters,
            key=postgres.SQLITE_GETS,
            label=f"SQLite: {masters.label}, same rounds",
            goal=None,
            writes=False,
            env={"APISERVER_DATABASE_URL": ""},
        )
        on = dataclasses.replace(run, root=run.root / "postgres")
        return measure(on, (gets, on_sqlite), store), server


def scale_phase(run: Run, args: argparse.Namespace) -> list[tuple[str, list[scale.Line]]]:
    """The scale phase on SQLite, then on a throwaway PostgreSQL (a database for the reads,
    another for the churn)."""
    out = []
    directory = run.root / "scale"
    directory.mkdir(parents=True, exist_ok=True)
    sizes = (args.scale_objects, args.scale_base, args.scale_churn)
    engines = (scale.sqlite_engine(directory, "reads"), scale.sqlite_engine(directory, "churn"))
    say(f"scale: SQLite, filling {args.scale_base:,} objects")
    out.append(("SQLite", scale.run(directory / "sqlite", run.launch, *engines, *sizes, say)))
    with postgres_server() as server_url:
        engines = (
            scale.postgres_engine(create_database(server_url)),
            scale.postgres_engine(create_database(server_url)),
        )
        say(f"scale: PostgreSQL, filling {args.scale_base:,} objects")
        lines = scale.run(directory / "postgres", run.launch, *engines, *sizes, say)
        out.append(
            (f"PostgreSQL ({postgres.describe(engines[0].env['APISERVER_DATABASE_URL'])})", lines)
        )
    return out


def search_phase(run: Run) -> list[tuple[str, list[scale.Line]]]:
    """The search phase on SQLite, then on a throwaway PostgreSQL."""
    directory = run.root / "search"
    directory.mkdir(parents=True, exist_ok=True)
    out = [("SQLite", search.run(scale.sqlite_engine(directory, "search"), say))]
    with postgres_server() as server_url:
        out.append(
            ("PostgreSQL", search.run(scale.postgres_engine(create_database(server_url)), say))
        )
    return out


def watchlist_phase(run: Run, args: argparse.Namespace) -> list[scale.Line]:
    """The watch-list phase on SQLite."""
    directory = run.root / "watchlist"
    directory.mkdir(parents=True, exist_ok=True)
    say(f"watch-list: filling {args.watchlist_objects:,} objects")
    engine = scale.sqlite_engine(directory, "watchlist")
    return watchlist.run(
        directory, run.launch, engine, args.watchlist_objects, args.watchlist_rounds, say
    )


def watch_plan(args: argparse.Namespace, settings: Settings) -> WatchPlan:
    """The watch phase's knobs, with the threads its server needs.

    Each open watch holds one gthread thread, and gunicorn hands connections to workers by
    chance (a worker stops accepting only at threads + 256 connections), so a worker may
    get more watches than its threads: those wait in its queue and receive nothing. Unless
    told otherwise, the bench gives each worker threads for every watch.
    """
    needed = args.watchers + WATCH_SPARE_THREADS
    if args.watch_threads:
        threads, note = args.watch_threads, "from --watch-threads"
    elif settings.threads >= needed:
        threads, note = settings.threads, "the server's setting, enough for every watch"
    else:
        threads = needed
        note = (
            f"set by the bench: the server's {settings.threads} per worker cannot hold "
            f"{args.watchers:,} watches when gunicorn gives one worker more than "
            f"{settings.threads} of them; {args.watchers:,} + {WATCH_SPARE_THREADS} spare "
            "lets any split work (idle threads are never created)"
        )
    return WatchPlan(
        args.watchers,
        args.watch_rate,
        args.watch_seconds,
        args.watch_processes,
        args.watch_drain,
        threads,
        note,
    )


def watch_phase(run: Run, plan: WatchPlan) -> Watched:
    """The watch phase on a server of its own, started with the threads it needs."""
    env = {"APISERVER_THREADS": str(plan.threads)}
    say(f"watch server: APISERVER_THREADS={plan.threads}")
    with run.launch.serve(run.root / "watch", REAL_APP, cluster=True, env=env) as served:
        watched = watch.run(served, plan, run.launch.workers, say)
        say("stopping the watch server")
    run.log.check("watch", served)  # after the stop: ending 1,000 streams must be clean too
    return watched


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything, print the report; exit 1 if any request failed or a worker died."""
    args = parse_args(argv)
    plan = Plan(args.clients, args.warmup, args.seconds, args.objects, args.lists, args.rounds)
    launch = Launch(args.workers, tuple(args.gunicorn_option))
    log = Log(args.workers)
    contenders = [
        c
        for c in CONTENDERS
        if not (args.no_gevent_server and c.key == "gets-gevent")
        and not (args.compare_only and not c.writes)
    ]
    settings = Settings.from_env()  # what the servers read too: they inherit the environment
    only = (
        args.watch_only
        or args.serving_only
        or args.postgres_only
        or args.combined_only
        or args.scale_only
        or args.search_only
        or args.ownership_only
        or args.admission_only
        or args.webhooks_only
        or args.observability_only
        or args.controller_only
        or args.watchlist_only
    )
    alone = only or args.compare_only  # no phase beyond the main one's
    watching = None
    if args.watch_only or not (args.no_watch or alone):
        watching = watch_plan(args, settings)
    with workdir(args.keep) as root:
        if args.control:
            contenders.insert(contenders.index(MAIN) + 1, CONTROL)
        if args.baseline is not None:
            source = root / "baseline-source"
            commit = baseline.export(ROOT, args.baseline, source)
            contenders.insert(contenders.index(UNLIMITED) + 1, baseline_contender(source, commit))
        run = Run(root, plan, launch, log, settings.auth_cache_seconds, args.auth_rounds)
        measured = None if only else measure(run, contenders, SQLITE)
        models = None
        if args.serving_only or not (args.no_serving or alone):
            chosen = args.serving_models.split(",")
            models = serving.run(
                root / "serving",
                launch,
                plan,
                say,
                log.check,
                [m for m in serving.MODELS if m.key in chosen],
            )
        on_postgres = joined = None
        if args.postgres_only or not (args.no_postgres or alone):
            on_postgres = postgres_phase(run)
        if args.combined_only or not (args.no_combined or alone):
            joined = combined.run(root, launch, plan.lists, say, log.check)
        scaled = None
        if args.scale_only or not (args.no_scale or alone):
            scaled = scale_phase(run, args)
        searched = None
        if args.search_only or not (args.no_search or alone):
            searched = search_phase(run)
        owning = None
        if args.ownership_only or not (args.no_ownership or alone):
            owning = ownership.run(root, say)
        admitting = None
        if args.admission_only or not (args.no_admission or alone):
            admitting = admission.run(root, say)
        hooking = None
        if args.webhooks_only or not (args.no_webhooks or alone):
            hooking = webhooks.run(root, say)
        observing = None
        if args.observability_only or not (args.no_observability or alone):
            observing = observability.run(root / "observability", say)
        controlling = None
        if args.controller_only or not (args.no_controller or alone):
            controlling = controller.run(root / "controller", say)
        listed = None
        if args.watchlist_only or not (args.no_watchlist or alone):
            listed = watchlist_phase(run, args)
        watched = None if watching is None else watch_phase(run, watching)
    say("done")
    if measured is not None:
        print_report(measured, run, contenders, settings)
        print()
    if models is not None:
        print(serving.rounds_report(models), end="\n\n")
        print(serving.summary_report(models), end="\n\n")
    if on_postgres is not None:
        sqlite = measured.figures if measured else None
        figures, rounds = on_postgres[0].figures, on_postgres[0].rounds
        print(postgres.report(figures, rounds, on_postgres[1], sqlite), end="\n\n")
    if joined is not None:
        print(combined.report(joined), end="\n\n")
    for name, lines in scaled or ():
        print(scale.report(scale.title(name, args.scale_objects), lines), end="\n\n")
    for name, lines in searched or ():
        print(scale.report(search.title(name), lines), end="\n\n")
    if owning is not None:
        print(scale.report(ownership.title(), owning), end="\n\n")
    if admitting is not None:
        print(scale.report(admission.title(), admitting), end="\n\n")
    if hooking is not None:
        print(scale.report(webhooks.title(), hooking), end="\n\n")
    if observing is not None:
        print(scale.report(observability.title(), observing), end="\n\n")
    if controlling is not None:
        print(scale.report(controller.title(), controlling), end="\n\n")
    if listed is not None:
        print(scale.report(watchlist.title(args.watchlist_objects), listed), end="\n\n")
    if watched is not None:
        print(watch.report(watched), end="\n\n")
    print("server logs: " + ("; ".join(log.lines) if log.lines else "no errors, no restarts"))
    failed = (
        (measured is not None and any(f.errors for f in measured.figures.values()))
        or (watched is not None and watch.failed(watched))
        or (models is not None and serving.failed(models))
        or (on_postgres is not None and any(f.errors for f in on_postgres[0].figures.values()))
        or log.lines
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
