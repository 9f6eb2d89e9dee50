"""``python -m bench``: run every scenario against fresh servers and print the tables.

All servers (the real one, the constant-JSON one, each under gthread and gevent) run side by
side, each with a fresh directory, PKI and database; idle, they cost nothing, and it lets
their gets run in interleaved rounds. Order matters: the list namespace is filled first (so
gets and lists see N objects) and the time-bounded creates run last, in their own namespace.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import scenarios
from bench.report import Figure, Goal, cpu_table, figures_table, median_round, ratios_table
from bench.scenarios import LIST_NAMESPACE, Plan
from bench.serve import CONSTANT_APP, REAL_APP, Launch, Served
from bench.wire import Connection
from proxy.settings import Settings

GEVENT = ("--worker-class", "gevent")
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
    args = parser.parse_args(argv)
    if args.clients < 1 or args.objects < 1 or args.objects % args.clients:
        parser.error("--objects must be a positive multiple of --clients")
    if min(args.lists, args.rounds, args.workers) < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--lists, --rounds, --workers, --seconds must be positive")
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

    def check(self, name: str, served: Served) -> None:
        """Note tracebacks, killed workers and replacement workers in ``served``'s log."""
        problems = served.problems()
        if problems:
            self.lines.append(f"{name}: {len(problems)} problem line(s), first: {problems[0]}")
        if (boots := served.worker_boots()) > self.workers:
            self.lines.append(f"{name}: {boots} workers booted for {self.workers} configured")


@dataclass(frozen=True, slots=True)
class Run:
    """What every scenario of one run shares."""

    root: Path
    plan: Plan
    launch: Launch
    log: Log


@dataclass(frozen=True, slots=True)
class Contender:
    """A server whose gets/s is measured in rounds, and how it is started."""

    key: str
    label: str
    app: str
    options: tuple[str, ...] = ()
    goal: Goal | None = None


CONTENDERS = (
    Contender("gets", "gets/s", REAL_APP, goal=scenarios.GETS),
    Contender("constant", "constant JSON gets/s (gthread)", CONSTANT_APP),
    Contender("constant-gevent", "constant JSON gets/s (gevent)", CONSTANT_APP, GEVENT),
    Contender("gets-gevent", "gets/s (server under gevent)", REAL_APP, GEVENT),
)
ORDER = ("creates", "fill", "gets", "list", "constant", "constant-gevent", "gets-gevent")
GET_PATH = scenarios.object_path(LIST_NAMESPACE, "l")  # the constant app answers it too


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


def get_rounds(
    run: Run, contenders: Sequence[Contender], servers: dict[str, Served]
) -> dict[str, Figure]:
    """Every contender's gets, round after round, interleaved; the median round of each."""
    results: dict[str, list[Figure]] = {c.key: [] for c in contenders}
    for number in range(1, run.plan.rounds + 1):
        for c in contenders:
            say(f"round {number}/{run.plan.rounds}: {c.label}")
            figure = scenarios.gets(servers[c.key], run.plan, GET_PATH, c.label, c.goal)
            results[c.key].append(figure)
    return {key: median_round(rounds) for key, rounds in results.items()}


def measure(run: Run, contenders: Sequence[Contender]) -> dict[str, Figure]:
    """Start every server, then fill, gets in rounds, lists, and creates last."""
    plan = run.plan
    with ExitStack() as stack:
        servers = {
            c.key: stack.enter_context(run.launch.serve(run.root / c.key, c.app, *c.options))
            for c in contenders
        }
        server = servers["gets"]
        say(f"servers up; filling {plan.objects:,} customtasks")
        figures = {"fill": scenarios.fill(server, plan)}
        for c in contenders[1:]:
            if c.app == REAL_APP:
                seed(servers[c.key])
        figures.update(get_rounds(run, contenders, servers))
        say(f"{plan.lists} lists")
        figures["list"] = scenarios.lists(server, plan)
        say("creates")
        figures["creates"] = scenarios.creates(server, plan)
        for c in contenders:
            run.log.check(c.key, servers[c.key])
    return {key: figures[key] for key in ORDER if key in figures}


def print_report(figures: dict[str, Figure], run: Run, threads: int) -> None:
    """The three tables and the log findings, on stdout."""
    ordered = list(figures.values())
    plan, workers, log = run.plan, run.launch.workers, run.log
    extra = " " + " ".join(run.launch.options) if run.launch.options else ""
    print(
        f"\n{plan.clients} client processes x 1 keep-alive mTLS connection, 127.0.0.1; "
        f"{plan.warmup:g} s warm-up + {plan.seconds:g} s per phase; "
        f"gets: median of {plan.rounds} interleaved rounds\n"
        f"gunicorn --config proxy/gunicorn.conf.py{extra}: {workers} workers x {threads} threads "
        f"(gthread unless noted); host: {os.cpu_count()} cores shared by server and clients\n"
    )
    print(figures_table(ordered), end="\n\n")
    print(cpu_table(ordered, os.cpu_count() or 1), end="\n\n")
    print(ratios_table(ratios(figures)), end="\n\n")
    for figure in ordered:
        if figure.failure:
            print(f"errors in {figure.label}: {figure.failure}")
    print("server logs: " + ("; ".join(log.lines) if log.lines else "no errors, no restarts"))
    busy = [f"{f.label} ({f.other_cores:.2f})" for f in ordered if f.other_cores > OTHER_LOAD]
    if busy:
        print("warning: other work used CPU cores during: " + ", ".join(busy) + "; rerun")
    skewed = [f"{f.label} ({f.skewed}x)" for f in ordered if f.skewed]
    if skewed:
        print(
            "warning: one worker held most client connections during: "
            + ", ".join(skewed)
            + "; gunicorn spreads them by chance, so those figures vary from run to run"
        )


def ratios(figures: dict[str, Figure]) -> list[tuple[str, float, float]]:
    """Server against the stack's ceiling, and gevent against gthread."""
    gets, constant, constant_gevent = (
        figures["gets"].value,
        figures["constant"].value,
        figures["constant-gevent"].value,
    )
    rows = [
        ("server gets / constant gets (share of the ceiling)", gets, constant),
        ("constant gets: gevent / gthread", constant_gevent, constant),
    ]
    if "gets-gevent" in figures:
        rows.append(("server gets: gevent / gthread", figures["gets-gevent"].value, gets))
    rows.append(("creates / gets (server)", figures["creates"].value, gets))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything, print the report; exit 1 if any request failed or a worker died."""
    args = parse_args(argv)
    plan = Plan(args.clients, args.warmup, args.seconds, args.objects, args.lists, args.rounds)
    launch = Launch(args.workers, tuple(args.gunicorn_option))
    log = Log(args.workers)
    contenders = CONTENDERS[:-1] if args.no_gevent_server else CONTENDERS
    with workdir(args.keep) as root:
        run = Run(root, plan, launch, log)
        figures = measure(run, contenders)
    say("done")
    print_report(figures, run, Settings.from_env().threads)
    failed = any(f.errors for f in figures.values()) or log.lines
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
