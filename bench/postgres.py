"""The PostgreSQL phase: the same fill, gets, list and creates on a server whose store is a
throwaway PostgreSQL 15 on loopback (started as the tests start theirs: fsync off, so the
figures price the server and the protocol, not this machine's disk)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from bench import scenarios
from bench.report import Figure, Goal, Ratio, figures_table, median_round, ratios_table
from bench.scenarios import LIST_NAMESPACE, Plan
from bench.serve import REAL_APP, Launch, Served
from tests.postgres import create_database, postgres_server

CREATES, GETS, LIST_MS = Goal(500, at_least=True), Goal(2500, at_least=True), Goal(150, False)
PREFIX = "PostgreSQL: "
SETTINGS = "fsync off, full_page_writes off, shared_buffers 64MB"


def run(
    root: Path,
    launch: Launch,
    plan: Plan,
    say: Callable[[str], None],
    check: Callable[[str, Served], None],
) -> dict[str, Figure]:
    """Fill, gets (median of the rounds), lists and creates against PostgreSQL; ``check``
    looks at the server's log afterwards."""
    with postgres_server() as server_url:
        env = {"APISERVER_DATABASE_URL": create_database(server_url)}
        with launch.serve(root / "postgres", REAL_APP, cluster=True, env=env) as served:
            say(f"PostgreSQL: filling {plan.objects:,} customtasks")
            figures = {"fill": scenarios.fill(served, plan)}
            path = scenarios.object_path(LIST_NAMESPACE, "l")
            rounds = []
            for number in range(1, plan.rounds + 1):
                say(f"PostgreSQL: gets, round {number}/{plan.rounds}")
                label = f"{PREFIX}gets/s (system:masters)"
                rounds.append(scenarios.gets(served, plan, path, label, GETS))
            figures["gets"] = median_round(rounds)
            say(f"PostgreSQL: {plan.lists} lists")
            figures["list"] = scenarios.lists(served, plan, LIST_MS, PREFIX)
            say("PostgreSQL: creates")
            figures["creates"] = scenarios.creates(served, plan, CREATES, f"{PREFIX}creates/s")
        check("postgres", served)
    return figures


def report(figures: Mapping[str, Figure], sqlite: Mapping[str, Figure] | None) -> str:
    """The PostgreSQL figures, and their ratio to SQLite's of the same run."""
    out = f"PostgreSQL 15 on 127.0.0.1 ({SETTINGS}), same server settings and clients:\n"
    out += figures_table([figures[key] for key in ("gets", "list", "creates")])
    if sqlite:
        ratios = [
            Ratio(f"PostgreSQL / SQLite: {name}", figures[key].value, sqlite[key].value)
            for key, name in (("gets", "gets/s"), ("list", "list ms"), ("creates", "creates/s"))
            if key in sqlite
        ]
        out += "\n\n" + ratios_table(ratios)
    return out
