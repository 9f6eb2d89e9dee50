"""The PostgreSQL phase's report: its gets against the SQLite server's of the same rounds, as
measured and per core of server and clients, where PostgreSQL's own CPU on this shared host
is left out."""

from __future__ import annotations

from bench import postgres
from bench.cpu import Usage, Worker
from bench.report import Figure


def _gets(label: str, rate: float, server: float, clients: float, host: float) -> Figure:
    usage = Usage(server, host, (Worker(server / 2, 4), Worker(server / 2, 4)))
    return Figure(label, rate, "/s", [0.002], 0, usage=usage, client_cores=clients)


def _line(report: str, start: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(start))


def test_gets_are_divided_as_measured_and_per_core_outside_postgresql() -> None:
    pg = _gets("PostgreSQL: gets/s", 3000, server=1.2, clients=0.3, host=1.9)  # 0.4 other
    sqlite = _gets("SQLite: gets/s, same rounds", 4000, server=1.5, clients=0.5, host=2.0)
    figures = {"gets": pg, postgres.SQLITE_GETS: sqlite}
    rounds = {"gets": [pg], postgres.SQLITE_GETS: [sqlite]}

    report = postgres.report(figures, rounds, "PostgreSQL 15", None)

    measured = _line(report, "PostgreSQL / SQLite gets/s, same rounds").split()
    assert measured[6:8] == ["0.75", ">="], measured  # 3,000 / 4,000, against the target
    per_core = _line(report, "the same, per core of server and clients").split()
    assert "1.00" in per_core  # 3,000 / 1.5 cores against 4,000 / 2.0: the same
    assert "2,000" in per_core and "FAIL" not in per_core and "PASS" not in per_core
