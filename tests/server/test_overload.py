"""R3 under load, through real gunicorn and TLS: a full in-flight pool is kube's 429 with
``Retry-After: 1`` (kube-apiserver's max-in-flight filter), and a request that outlives the
request timeout is kube's 504 Timeout. What keeps a request in flight is real: the test holds
SQLite's write lock, as a slow writer would, and the server's write waits behind it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from tests.support.scraping import delta, scrape
from tests.support.servers import Server, run_server

GROUP = "search.task.example.example.com"
GV = f"/apis/{GROUP}/v1"
TERMINATIONS = "apiserver_request_terminations_total"
SPEC = {"priority": 1, "deadline": "2026-01-01T00:00:00Z"}


@contextmanager
def store_locked(database: Path) -> Iterator[None]:
    """Hold the store's write lock: the server's writes wait until the block ends."""
    connection = sqlite3.connect(database, isolation_level=None, timeout=30)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def task(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": SPEC}


def until(
    send: Callable[[], requests.Response], done: Callable[[requests.Response], bool]
) -> requests.Response:
    """Send until ``done`` (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        r = send()
        if done(r) or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """One worker admitting one read-only and one mutating request at a time."""
    directory = tmp_path_factory.mktemp("limited")
    env = {
        "APISERVER_MAX_REQUESTS_INFLIGHT": "1",
        "APISERVER_MAX_MUTATING_REQUESTS_INFLIGHT": "1",
    }
    with run_server(directory, workers=1, env=env) as server:
        yield server, directory / "store.db"


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """A server whose requests time out after one second."""
    directory = tmp_path_factory.mktemp("impatient")
    env = {"APISERVER_REQUEST_TIMEOUT_SECONDS": "1"}
    with run_server(directory, workers=1, env=env) as server:
        yield server, directory / "store.db"


def test_a_full_mutating_pool_is_kubes_429_until_its_slot_comes_back(
    limited: tuple[Server, Path],
) -> None:
    server, database = limited
    url = f"{server.url}{GV}/clustertasks"
    alice = server.session("alice", ("devs",))  # refused by authorization, after the limit
    before = scrape(server.session(), server.url)  # system:masters are served over the limit
    answers: list[int] = []

    def send() -> requests.Response:
        answer = alice.post(url, json=task("refused"), timeout=30)
        answers.append(answer.status_code)
        return answer

    with ThreadPoolExecutor(1) as pool:
        with store_locked(database):
            held = pool.submit(server.session().post, url, json=task("held"), timeout=60)
            refused = until(send, lambda r: r.status_code == 429)
            assert refused.status_code == 429, refused.text
            assert refused.headers["Retry-After"] == "1"
            assert refused.headers["Content-Type"] == "application/json"
            assert refused.json() == {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "Too many requests, please try again later.",
                "reason": "TooManyRequests",
                "details": {"retryAfterSeconds": 1},
                "code": 429,
            }
            read = alice.get(url, timeout=30)  # the read-only pool is another pool
            assert read.json()["reason"] == "Forbidden"
        assert held.result().status_code == 201
    after = alice.post(url, json=task("after"), timeout=30)
    assert after.json()["reason"] == "Forbidden"
    # kube counts a request it drops, and its termination; not those authorization refuses
    counted = delta(before, scrape(server.session(), server.url), "apiserver_request_total")
    dropped = answers.count(429)
    post = {"verb": "POST", "group": GROUP, "version": "v1", "resource": "clustertasks"}
    where = {**post, "subresource": "", "scope": "resource", "component": "apiserver"}
    assert counted == {
        frozenset({**where, "dry_run": "", "code": "429"}.items()): dropped,
        frozenset({**where, "dry_run": "", "code": "201"}.items()): 1,
    }
    terminated = delta(before, scrape(server.session(), server.url), TERMINATIONS)
    assert terminated == {frozenset({**where, "code": "429"}.items()): dropped}


def test_a_watch_takes_no_slot(limited: tuple[Server, Path]) -> None:
    server, _ = limited
    url = f"{server.url}{GV}/clustertasks"
    params = {"watch": "true", "timeoutSeconds": "30"}
    with server.session().get(url, params=params, stream=True, timeout=30) as watch:
        assert watch.status_code == 200
        for _ in range(3):
            read = server.session("alice", ("devs",)).get(url, timeout=30)
            assert read.json()["reason"] == "Forbidden", read.text  # not TooManyRequests


def test_a_request_past_the_timeout_is_kubes_504_though_its_write_happened(
    impatient: tuple[Server, Path],
) -> None:
    server, database = impatient
    url = f"{server.url}{GV}/clustertasks"
    before = scrape(server.session(), server.url)
    with ThreadPoolExecutor(1) as pool:
        with store_locked(database):
            late = pool.submit(server.session().post, url, json=task("late"), timeout=60)
            time.sleep(4)  # the request waits for the store well past its one second
        r = late.result()
    assert r.status_code == 504, r.text
    assert r.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Timeout: request did not complete within the allotted timeout",
        "reason": "Timeout",
        "code": 504,
    }
    assert server.session().get(f"{url}/late", timeout=30).status_code == 200  # as in kube
    where = {
        **{"verb": "POST", "group": GROUP, "version": "v1", "resource": "clustertasks"},
        **{"subresource": "", "scope": "resource", "component": "apiserver"},
    }
    terminated = delta(before, scrape(server.session(), server.url), TERMINATIONS)
    assert terminated == {frozenset({**where, "code": "504"}.items()): 1}


def test_a_watch_outlives_the_request_timeout(impatient: tuple[Server, Path]) -> None:
    server, _ = impatient
    url = f"{server.url}{GV}/clustertasks"
    session = server.session()
    params = {"watch": "true", "resourceVersion": "0", "timeoutSeconds": "4"}
    with session.get(url, params=params, stream=True, timeout=30) as watch:
        time.sleep(2)  # past the request timeout
        assert session.post(url, json=task("watched"), timeout=30).status_code == 201
        events = [orjson.loads(line) for line in watch.iter_lines() if line]
    assert watch.status_code == 200
    names = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert ("ADDED", "watched") in names
    assert all(e["type"] != "ERROR" for e in events)
