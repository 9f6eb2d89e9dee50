"""The PostgreSQL phase's store and report: the main server's fill, gets, list and creates run
again, by the same code, on a server whose store is a throwaway PostgreSQL 15 on loopback,
started as the tests start theirs (fsync off, so the figures price the server and the
protocol, not this machine's disk). The report quotes the settings the server itself reports,
so it stays true if the tests' helper changes them."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import psycopg

from bench.report import (
    Figure,
    Goal,
    Ratio,
    cpu_table,
    figures_table,
    flagged,
    pairs_line,
    ratios_table,
)
from bench.scenarios import Store
from tests.support.postgres import create_database, postgres_server

CREATES, GETS, LIST_MS = Goal(500, at_least=True), Goal(2500, at_least=True), Goal(150, False)
RATIO = Goal(0.8, at_least=True)
"""PostgreSQL gets against SQLite gets of the same rounds."""
SQLITE_GETS = "gets-sqlite"
"""The key of the gets of the server on SQLite that takes turns with the PostgreSQL one."""
PREFIX = "PostgreSQL: "
REPORTED = ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers")
"""The server settings that decide what a write costs, quoted in the report."""


@contextmanager
def database() -> Iterator[tuple[Store, str]]:
    """A fresh database on a throwaway server, as the store of a phase, and a line saying
    which server it is and how it is set up; the server is removed afterwards."""
    with postgres_server() as server_url:
        url = create_database(server_url)
        yield Store({"APISERVER_DATABASE_URL": url}, PREFIX, CREATES, LIST_MS), describe(url)


def describe(url: str) -> str:
    """The server's version and the :data:`REPORTED` settings, as the server reports them."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name",
            [["server_version", *REPORTED]],
        ).fetchall()
    values: dict[str, str] = dict(rows)
    settings = ", ".join(f"{name} {values[name]}" for name in REPORTED)
    return f"PostgreSQL {values['server_version']} on 127.0.0.1 ({settings})"


def _outside_postgres(figure: Figure) -> float:
    """Gets/s per core the server and the clients used: what PostgreSQL's own processes,
    which share this host's cores here but have a host of their own when deployed, take
    from the server is left out (NaN without CPU figures)."""
    cores = (figure.usage.server if figure.usage else 0.0) + (figure.client_cores or 0.0)
    return figure.value / cores if cores else math.nan


def report(
    figures: Mapping[str, Figure],
    rounds: Mapping[str, Sequence[Figure]],
    server: str,
    sqlite: Mapping[str, Figure] | None,
) -> str:
    """The PostgreSQL figures, their CPU and problems; the gets against those of the server
    on SQLite that took turns with them (round by round too); and every figure's ratio to
    the main phase's."""
    ordered = list(figures.values())
    out = f"{server}, a fresh database; same gunicorn settings, clients and phases as SQLite's:\n"
    out += figures_table(ordered) + "\n\n"
    out += cpu_table(ordered, os.cpu_count() or 1)
    out += '\n(here "other" is mostly PostgreSQL\'s own processes, on the same cores)'
    ratios = []
    if SQLITE_GETS in figures:
        same = figures[SQLITE_GETS]
        ratios += [
            Ratio(
                "PostgreSQL / SQLite gets/s, same rounds", figures["gets"].value, same.value, RATIO
            ),
            Ratio(
                "the same, per core of server and clients (PostgreSQL's own CPU left out)",
                _outside_postgres(figures["gets"]),
                _outside_postgres(same),
            ),
        ]
    if sqlite:
        ratios += [
            Ratio(
                f"PostgreSQL / SQLite: {sqlite[key].label} (main phase)",
                figure.value,
                sqlite[key].value,
            )
            for key, figure in figures.items()
            if key in sqlite
        ]
    if ratios:
        out += "\n\n" + ratios_table(ratios)
    if SQLITE_GETS in rounds:
        out += "\n" + pairs_line(rounds["gets"], rounds[SQLITE_GETS])
    return "\n".join([out, *flagged(ordered)])
