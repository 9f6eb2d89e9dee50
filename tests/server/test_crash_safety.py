"""Crash safety: an acknowledged create survives any crash, exactly once.

Clients create customtasks without pause while one gunicorn worker is SIGKILLed (the master
boots a replacement) and then the whole server, master and workers, is SIGKILLed at once. A new
server on the same store must list every create it acknowledged (201) exactly once with the
acknowledged resourceVersion, hand out higher revisions afterwards, and leave a consistent
store: ``PRAGMA integrity_check`` on SQLite, and on both stores the objects, the change log and
the revision counter agreeing. A create that was not acknowledged may or may not exist.
"""

from __future__ import annotations

import itertools
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
import requests

from tests.support.postgres import postgres_database_fixture, postgres_url_fixture  # noqa: F401
from tests.support.processes import Process, children
from tests.support.servers import Pki, Server, run_server

GV = "/apis/search.task.example.example.com/v1"
NAMESPACE = "crash"
SPEC = {"priority": 1, "deadline": "2026-01-01T00:00:00Z"}
WORKERS = 2
CLIENTS = 4
ACKS_PER_PHASE = 40
TRANSIENT = {502, 503, 504}  # what a dying server may answer; anything else but 201 is a defect
WAIT = 60.0  # for any one condition: generous, since a slow shared machine must not fail it

Rows = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]
Store = Callable[[], AbstractContextManager[Rows]]  # opens the store for checks


# processes


def booted_workers(server: Server) -> list[int]:
    """The pids of every worker the master has booted, from its log's complete lines."""
    return [
        record["pid"]
        for record in map(orjson.loads, server.log().split("\n")[:-1])
        if record.get("message", "").startswith("Booting worker")
    ]


def wait_until(
    condition: Callable[[], bool], what: str, server: Server | None = None, timeout: float = WAIT
) -> None:
    """Poll ``condition``; on time out fail with ``what`` and the server's log."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}\n{server and server.log()}")
        time.sleep(0.05)


@dataclass
class Crash:
    """SIGKILLs a server's master and every worker as one crash, and cleans up after a
    failed test: SIGSTOP the master first so it cannot boot a replacement in between."""

    server: Server
    master: Process
    workers: set[Process] = field(default_factory=set)

    @classmethod
    def of(cls, server: Server) -> Crash:
        master = Process.of(server.process.pid)
        assert master is not None, server.log()
        return cls(server, master)

    def current_workers(self) -> set[Process]:
        found = children(self.master)
        self.workers |= found
        return found

    def kill_worker(self) -> Process:
        worker = min(self.current_workers(), key=lambda p: p.pid)
        worker.send(signal.SIGKILL)
        return worker

    def kill_all(self) -> None:
        """Idempotent: whatever of the server still runs is SIGKILLed and reaped."""
        if self.master.alive():
            self.master.send(signal.SIGSTOP)
            wait_until(lambda: self.master.state() in (None, "T", "Z"), "the master stopped")
            self.current_workers()
        for worker in self.workers:
            worker.send(signal.SIGKILL)
        self.master.send(signal.SIGKILL)
        self.server.process.wait(timeout=WAIT)
        wait_until(
            lambda: not any(w.alive() for w in self.workers),
            f"workers {sorted(w.pid for w in self.workers)} gone",
        )


# clients


@dataclass
class Ledger:
    """What the clients tried and what the server acknowledged, shared by their threads."""

    acknowledged: dict[str, int] = field(default_factory=dict)  # name -> resourceVersion
    attempted: set[str] = field(default_factory=set)
    transient: int = 0  # connection errors and 502-504 answers
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acks(self) -> int:
        with self.lock:
            return len(self.acknowledged)


def create_forever(server: Server, index: int, ledger: Ledger, stop: threading.Event) -> None:
    """POST fresh names until ``stop``, each on a new connection so that every worker,
    including a replacement, keeps receiving creates."""
    session = server.session()
    session.headers["Connection"] = "close"
    url = f"{server.url}{GV}/namespaces/{NAMESPACE}/customtasks"
    for n in itertools.count():
        if stop.is_set():
            return
        name = f"c{index}-{n:05d}"
        with ledger.lock:
            ledger.attempted.add(name)
        try:
            r = session.post(url, json={"metadata": {"name": name}, "spec": SPEC}, timeout=30)
        except requests.RequestException:
            with ledger.lock:
                ledger.transient += 1
            stop.wait(0.05)
            continue
        body = r.json() if r.status_code == 201 else None  # read whole: a bad body is a defect
        with ledger.lock:
            if body is not None and body["metadata"]["name"] == name:
                ledger.acknowledged[name] = int(body["metadata"]["resourceVersion"])
            elif r.status_code in TRANSIENT:
                ledger.transient += 1
            else:
                ledger.unexpected.append(f"{name}: {r.status_code} {r.text}")


@contextmanager
def clients(server: Server, ledger: Ledger) -> Iterator[Callable[[], None]]:
    """Run the creating clients; yield a check that raises if any failed; stop them after."""
    stop = threading.Event()
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures: list[Future[None]] = [
            pool.submit(create_forever, server, i, ledger, stop) for i in range(CLIENTS)
        ]

        def healthy() -> None:
            for future in futures:
                if future.done():
                    future.result()
                    raise AssertionError("a client stopped early")
            assert not ledger.unexpected, ledger.unexpected[:5]

        try:
            yield healthy
        finally:
            stop.set()
    for future in futures:
        future.result()


def progress(ledger: Ledger, healthy: Callable[[], None], more: int, what: str) -> None:
    """Wait for ``more`` acknowledged creates than now."""
    target = ledger.acks() + more

    def reached() -> bool:
        healthy()
        return ledger.acks() >= target

    wait_until(reached, f"{more} more acknowledged creates {what}")


# checks after the restart


def listed(server: Server) -> list[tuple[str, int]]:
    """(name, resourceVersion) of every customtask in the namespace, page by page."""
    session = server.session()
    url = f"{server.url}{GV}/namespaces/{NAMESPACE}/customtasks"
    items: list[tuple[str, int]] = []
    params = {"limit": "250"}
    while True:
        r = session.get(url, params=params, timeout=30)
        assert r.status_code == 200, r.text
        page = r.json()
        items += [
            (i["metadata"]["name"], int(i["metadata"]["resourceVersion"])) for i in page["items"]
        ]
        if not page["metadata"].get("continue"):
            return items
        params = {"limit": "250", "continue": page["metadata"]["continue"]}


def check_store(rows: Rows, api: dict[str, int]) -> None:
    """The store's own tables agree with what the API listed: one object row per name, each
    with its create in the change log exactly once, and the counter ahead of both."""
    scope = ("customtasks", NAMESPACE)
    objects = rows("SELECT name, rev FROM objects WHERE res = ? AND ns = ?", scope)
    assert dict(objects) == api and len(objects) == len(api)
    (compacted,) = rows("SELECT v FROM meta WHERE k = 'compact_rev'", ())[0]
    (counter,) = rows("SELECT v FROM meta WHERE k = 'rev'", ())[0]
    created = rows(
        "SELECT name, rev FROM log WHERE res = ? AND ns = ? AND type = 0 AND rev > ?",
        (*scope, compacted),
    )
    assert len({name for name, _ in created}) == len(created), "a name created twice in the log"
    assert {n: r for n, r in objects if r > compacted} == dict(created)
    (highest,) = rows("SELECT max(rev) FROM log", ())[0]
    assert counter >= highest >= max(api.values())


@contextmanager
def sqlite_rows(path: str) -> Iterator[Rows]:
    """Queries on the SQLite file, once SQLite itself finds it intact."""
    with closing(sqlite3.connect(path, timeout=30)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        yield lambda sql, params: conn.execute(sql, params).fetchall()


@contextmanager
def postgres_rows(url: str) -> Iterator[Rows]:
    with psycopg.connect(url, autocommit=True) as conn:
        yield lambda sql, params: conn.execute(sql.replace("?", "%s"), params).fetchall()


def check_restarted(server: Server, ledger: Ledger, store: Store) -> None:
    items = listed(server)
    api = dict(items)
    assert len(api) == len(items), "a name listed twice"
    assert len(set(api.values())) == len(items), "a resourceVersion listed twice"
    lost = {n: rv for n, rv in ledger.acknowledged.items() if n not in api}
    assert not lost, f"acknowledged creates lost: {sorted(lost.items())[:10]}"
    changed = {n: (rv, api[n]) for n, rv in ledger.acknowledged.items() if api[n] != rv}
    assert not changed, f"acknowledged resourceVersions changed: {sorted(changed.items())[:10]}"
    assert set(api) <= ledger.attempted, "objects nobody created"
    after = server.session().post(
        f"{server.url}{GV}/namespaces/{NAMESPACE}/customtasks",
        json={"metadata": {"name": "after-restart"}, "spec": SPEC},
        timeout=30,
    )
    assert after.status_code == 201, after.text
    assert int(after.json()["metadata"]["resourceVersion"]) > max(api.values())
    api["after-restart"] = int(after.json()["metadata"]["resourceVersion"])
    with store() as rows:
        check_store(rows, api)
    errors = [line for line in server.log().splitlines() if '"level":"error"' in line]
    assert not errors, errors[:5]


# the scenario


def crash_and_restart(root: Path, env: dict[str, str], store: Store) -> None:
    pki = Pki.create(root / "pki")
    ledger = Ledger()
    (root / "first").mkdir()
    (root / "second").mkdir()
    with run_server(root / "first", workers=WORKERS, pki=pki, env=env) as first:
        crash = Crash.of(first)
        try:
            with clients(first, ledger) as healthy:
                progress(ledger, healthy, ACKS_PER_PHASE, "before any kill")
                booted = set(booted_workers(first))
                killed = crash.kill_worker()
                wait_until(
                    lambda: set(booted_workers(first)) - booted != set(),
                    f"a worker booted in place of {killed.pid}",
                    first,
                )
                wait_until(lambda: len(crash.current_workers()) == WORKERS, "workers", first)
                progress(ledger, healthy, ACKS_PER_PHASE, "after a worker was killed")
                crash.kill_all()
                assert not killed.alive() and not crash.master.alive()
        finally:
            crash.kill_all()
    assert not ledger.unexpected, ledger.unexpected[:5]
    assert len(ledger.acknowledged) >= 2 * ACKS_PER_PHASE
    with run_server(root / "second", workers=WORKERS, pki=pki, env=env) as second:
        check_restarted(second, ledger, store)


def test_sqlite_acknowledged_creates_survive_worker_and_server_kills(tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    crash_and_restart(tmp_path, {"APISERVER_SQLITE_PATH": path}, lambda: sqlite_rows(path))


def test_postgres_acknowledged_creates_survive_worker_and_server_kills(
    tmp_path: Path, postgres_database: str
) -> None:
    env = {"APISERVER_DATABASE_URL": postgres_database}
    crash_and_restart(tmp_path, env, lambda: postgres_rows(postgres_database))
