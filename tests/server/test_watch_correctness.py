"""R6 (WATCH) and R12 (every write is exactly one event) under load, on the real server.

Writers in two spawned OS processes (four threads each) create, update (PUT with the
current resourceVersion, retried on 409) and delete customtasks in one namespace while 20
streaming watches, started from the resourceVersion of a list taken before the writes
(half of them before the writers start, half while they write, so that these replay the
log and then switch to live changes; two more once the writes are done, replaying more than
one page of the log), read every event. Each watch must see every change
exactly once, in resourceVersion order, and nothing else; replaying the events onto the
list must give the final list. Then the ``kubernetes`` package's DynamicClient watches,
is disconnected mid-stream, misses changes while away and must get each of them, once,
when it resumes from the last resourceVersion it saw.

The server is a private one (two gunicorn workers, so two log tailers) that no other test
writes to while these run, once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import itertools
import multiprocessing
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from tests.support.postgres import create_database, postgres_url_fixture  # noqa: F401
from tests.support.servers import Server, run_server

GROUP_VERSION = "search.task.example.example.com/v1"
GV = f"/apis/{GROUP_VERSION}"
SPEC = {"priority": 1, "deadline": "2026-01-01T00:00:00Z"}
SENTINEL = "zz-sentinel"

PROCESSES, THREADS, OPERATIONS = 2, 4, 66  # 528 writes: a replay of them takes 2 pages
SHARED = ("shared-0", "shared-1", "shared-2")  # updated by every writer thread: 409s
EARLY_WATCHERS, LATE_WATCHERS, AFTER_WATCHERS = 10, 10, 2
SETTLE = 0.3  # after the writers, before the sentinel: late duplicates would precede it

Record = tuple[str, str, int]  # (event type, name, resourceVersion) of one write


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def own_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of our own on each store: two workers, nothing else writing to it."""
    env = {}
    if request.param == "postgres":
        env["APISERVER_DATABASE_URL"] = create_database(request.getfixturevalue("postgres_url"))
    directory = tmp_path_factory.mktemp(f"watch-correctness-{request.param}")
    with run_server(directory, workers=2, env=env) as running:
        yield running


# the writers (run in spawned processes: everything they need is picklable and top-level)


@dataclass(frozen=True)
class WriterJob:
    url: str  # the namespace's customtasks collection
    ca_file: str
    cert: tuple[str, str]
    process: int


@dataclass
class WriterResult:
    records: list[list[Record]]  # per thread, in the order the thread wrote
    conflicts: int


def owned_name(process: int, thread: int) -> str:
    """An object each writer thread finds in the initial list and may update or delete."""
    return f"pre-p{process}-t{thread}"


def write_customtasks(job: WriterJob) -> WriterResult:
    """One writer process: THREADS threads of OPERATIONS writes each."""
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda thread: _write(job, thread), range(THREADS)))
    return WriterResult([r for r, _ in results], sum(c for _, c in results))


def _write(job: WriterJob, thread: int) -> tuple[list[Record], int]:
    session = requests.Session()
    session.trust_env = False
    session.verify = job.ca_file
    session.cert = job.cert
    prefix = f"p{job.process}-t{thread}"
    rng = random.Random(f"{prefix}-{time.time_ns()}")
    records: list[Record] = []
    conflicts = 0
    owned: dict[str, dict[str, Any]] = {}
    pre = owned_name(job.process, thread)
    r = session.get(f"{job.url}/{pre}", timeout=30)
    assert r.status_code == 200, r.text
    owned[pre] = r.json()

    for step in range(OPERATIONS):
        tag = f"{prefix} step {step}"  # unique: no update is a no-op
        roll = rng.random()
        if not owned or roll < 0.35:
            name = f"{prefix}-{step}"
            body = {"metadata": {"name": name}, "spec": {**SPEC, "details": tag}}
            r = session.post(job.url, json=body, timeout=30)
            assert r.status_code == 201, r.text
            owned[name] = r.json()
            records.append(("ADDED", name, _version(owned[name])))
        elif roll < 0.8:
            name = rng.choice(SHARED) if roll < 0.6 else rng.choice(sorted(owned))
            held = owned.get(name)
            for _ in range(200):
                if held is None:
                    r = session.get(f"{job.url}/{name}", timeout=30)
                    assert r.status_code == 200, r.text
                    held = r.json()
                changed = {**held, "spec": {**held["spec"], "details": tag}}
                r = session.put(f"{job.url}/{name}", json=changed, timeout=30)
                if r.status_code != 409:
                    break
                conflicts += 1
                held = None
            assert r.status_code == 200, r.text
            if name in owned:
                owned[name] = r.json()
            records.append(("MODIFIED", name, _version(r.json())))
        else:
            name = rng.choice(sorted(owned))
            r = session.delete(f"{job.url}/{name}", timeout=30)
            assert r.status_code == 200, r.text
            deleted = r.json()
            assert deleted["metadata"]["name"] == name
            # the deletion's resourceVersion, newer than the last write's (R6)
            assert _version(deleted) > _version(owned.pop(name)), deleted
            records.append(("DELETED", name, _version(deleted)))
    session.close()
    return records, conflicts


def _version(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


# the watchers


class StreamWatch:
    """A streaming watch read in a thread until the sentinel's ADDED event.

    With bookmarks it reads on until a BOOKMARK at or after the sentinel's revision, which
    says the server has sent everything up to there: a duplicate sent late would show."""

    def __init__(self, server: Server, url: str, version: int, *, bookmarks: bool) -> None:
        self.events: list[Record] = []  # BOOKMARK events included, name ""
        self.bookmarks = bookmarks
        self.connected = threading.Event()
        self.done = threading.Event()
        self.problem = ""
        self._session = server.session()
        self._params = {
            "watch": "true",
            "resourceVersion": str(version),
            "timeoutSeconds": "60",  # the test ends it long before
        }
        if bookmarks:
            self._params["allowWatchBookmarks"] = "true"
        self._url = url
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            with self._session.get(
                self._url, params=self._params, stream=True, timeout=(10, 30)
            ) as response:
                if response.status_code != 200:
                    self.problem = f"watch answered {response.status_code}: {response.text}"
                    return
                self.connected.set()
                self.problem = self._read(response)
        except Exception as ex:
            self.problem = f"watch failed: {ex!r}"
        finally:
            self._session.close()
            self.connected.set()
            self.done.set()

    def _read(self, response: requests.Response) -> str:
        sentinel: int | None = None
        for line in response.iter_lines():
            if not line:
                continue
            event = orjson.loads(line)
            kind, obj = event["type"], event["object"]
            if kind == "ERROR":
                return f"ERROR event after {len(self.events)} events: {obj}"
            metadata = obj["metadata"]
            version = int(metadata["resourceVersion"])
            self.events.append((kind, metadata.get("name", ""), version))
            if kind == "ADDED" and metadata["name"] == SENTINEL:
                sentinel = version
            if sentinel is not None and (
                not self.bookmarks or (kind == "BOOKMARK" and version >= sentinel)
            ):
                return ""
        return f"the stream ended before the sentinel, after {len(self.events)} events"

    def changes(self) -> list[Record]:
        return [e for e in self.events if e[0] != "BOOKMARK"]


def _create(session: requests.Session, url: str, name: str) -> dict[str, Any]:
    body = {"metadata": {"name": name}, "spec": SPEC}
    r = session.post(url, json=body, timeout=30)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def _listed(session: requests.Session, url: str) -> tuple[int, dict[str, int]]:
    r = session.get(url, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    items = {item["metadata"]["name"]: _version(item) for item in body["items"]}
    return int(body["metadata"]["resourceVersion"]), items


def _problems(
    watch: StreamWatch,
    expected: set[Record],
    start: int,
    initial: dict[str, int],
    final: dict[str, int],
) -> list[str]:
    """What is wrong with what one watch saw."""
    if watch.problem:
        return [watch.problem]
    out = []
    changes = watch.changes()
    versions = [v for _, _, v in changes]
    disorder = [(a, b) for a, b in itertools.pairwise(versions) if a >= b]
    if disorder:
        out.append(f"resourceVersions not strictly increasing at {disorder[:5]}")
    if versions and versions[0] <= start:
        out.append(f"event at {versions[0]}, not after the list's {start}")
    seen = set(changes)
    if len(changes) != len(seen):
        repeated = sorted({c for c in changes if changes.count(c) > 1}, key=lambda c: c[2])
        out.append(f"{len(changes) - len(seen)} repeated events, e.g. {repeated[:5]}")
    missing = sorted(expected - seen, key=lambda c: c[2])
    extra = sorted(seen - expected, key=lambda c: c[2])
    if missing:
        out.append(f"{len(missing)} of {len(expected)} changes missing, e.g. {missing[:5]}")
    if extra:
        out.append(f"{len(extra)} events nobody wrote, e.g. {extra[:5]}")
    last = start
    for kind, _, version in watch.events:  # a bookmark promises everything up to it was sent
        if kind == "BOOKMARK" and version < last:
            out.append(f"BOOKMARK at {version} after an event or bookmark at {last}")
        elif kind != "BOOKMARK" and version <= last:
            out.append(f"{kind} at {version} after a bookmark or event at {last}")
        last = max(last, version)
    state = dict(initial)
    for kind, name, version in changes:
        if kind == "DELETED":
            state.pop(name, None)
        else:
            state[name] = version
    if state != final:
        diff = sorted(set(state.items()) ^ set(final.items()))
        out.append(f"list + events != final list; differing (name, rv): {diff[:5]}")
    return out


def test_r6_every_watch_sees_every_change_once_in_order_under_load(own_server: Server) -> None:
    """R6/R12: 20 watches from a list's resourceVersion while 2 processes x 4 threads write,
    2 more started after the writes (their replay of the log is longer than one page)."""
    s = own_server.session()
    url = f"{own_server.url}{GV}/namespaces/load/customtasks"
    for name in SHARED:
        _create(s, url, name)
    for process in range(PROCESSES):
        for thread in range(THREADS):
            _create(s, url, owned_name(process, thread))
    start, initial = _listed(s, url)

    early = [
        StreamWatch(own_server, url, start, bookmarks=i % 2 == 0) for i in range(EARLY_WATCHERS)
    ]
    for watch in early:
        assert watch.connected.wait(10) and not watch.problem, watch.problem

    cert = own_server.pki.client("admin", ("system:masters",))
    jobs = [WriterJob(url, own_server.pki.ca_file, cert, p) for p in range(PROCESSES)]
    with ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(write_customtasks, job) for job in jobs]
        # The late watches start once writes are under way: they replay the log from the
        # list's revision while live changes queue up, then go live.
        deadline = time.monotonic() + 30
        while _listed(s, url)[0] == start and time.monotonic() < deadline:
            time.sleep(0.01)
        late = [
            StreamWatch(own_server, url, start, bookmarks=i % 2 == 0) for i in range(LATE_WATCHERS)
        ]
        results = [future.result(timeout=60) for future in futures]
    writes_done = _listed(s, url)[0]

    threads = [records for result in results for records in result.records]
    for records in threads:  # one thread's writes are sequential: increasing versions
        versions = [v for _, _, v in records]
        assert versions == sorted(versions) and len(set(versions)) == len(versions), records
    expected = {record for records in threads for record in records}
    assert len(expected) == PROCESSES * THREADS * OPERATIONS
    assert len({v for _, _, v in expected}) == len(expected)  # one revision per write
    assert {kind for kind, _, _ in expected} == {"ADDED", "MODIFIED", "DELETED"}
    assert all(late_watch.connected.wait(10) for late_watch in late)
    # and two more once every write is in the log: a replay of more than 500 changes
    after = [StreamWatch(own_server, url, start, bookmarks=i == 0) for i in range(AFTER_WATCHERS)]
    assert all(after_watch.connected.wait(10) for after_watch in after)

    time.sleep(SETTLE)
    sentinel = _create(s, url, SENTINEL)
    expected.add(("ADDED", SENTINEL, _version(sentinel)))
    watches = early + late + after
    groups = ["early"] * len(early) + ["late"] * len(late) + ["after the writes"] * len(after)
    deadline = time.monotonic() + 15
    for watch in watches:
        watch.done.wait(max(0.0, deadline - time.monotonic()))
    _, final = _listed(s, url)

    report = []
    for index, watch in enumerate(watches):
        if not watch.done.is_set():
            problems = [f"no sentinel after 15 s; {len(watch.changes())} changes seen"]
        else:
            problems = _problems(watch, expected, start, initial, final)
        marks = "with bookmarks" if watch.bookmarks else "plain"
        report += [f"watch {index} ({groups[index]}, {marks}): {p}" for p in problems]
    conflicts = sum(result.conflicts for result in results)
    summary = (
        f"{len(expected)} changes from revision {start} to {writes_done} "
        f"and the sentinel, {conflicts} conflicts retried"
    )
    assert not report, summary + "\n" + "\n".join(report)


def test_r6_dynamic_client_resumes_after_a_disconnect_without_loss_or_repeat(
    own_server: Server, tmp_path: Path
) -> None:
    """R6: the kubernetes DynamicClient discovers CustomTask, lists, watches, is cut off,
    and resumes from the last resourceVersion it saw: every change once, in order."""
    from kubernetes import config
    from kubernetes.dynamic import DynamicClient

    api = config.new_client_from_config(config_file=own_server.kubeconfig())  # type: ignore[no-untyped-call]
    dynamic = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))  # type: ignore[no-untyped-call]
    tasks = dynamic.resources.get(api_version=GROUP_VERSION, kind="CustomTask")
    assert (tasks.name, tasks.namespaced) == ("customtasks", True)
    namespace = "resume"

    def create(name: str) -> Record:
        body = {"apiVersion": GROUP_VERSION, "kind": "CustomTask", "metadata": {"name": name}}
        created = tasks.create(body={**body, "spec": SPEC}, namespace=namespace)
        return ("ADDED", name, int(created.metadata.resourceVersion))

    def update(name: str, details: str) -> Record:
        current = tasks.get(name=name, namespace=namespace).to_dict()
        current["spec"]["details"] = details
        replaced = tasks.replace(body=current, namespace=namespace)
        return ("MODIFIED", name, int(replaced.metadata.resourceVersion))

    def delete(name: str) -> Record:
        deleted = tasks.delete(name=name, namespace=namespace)
        return ("DELETED", name, int(deleted.metadata.resourceVersion))

    def record(event: dict[str, Any]) -> Record:
        metadata = event["raw_object"]["metadata"]
        return (str(event["type"]), metadata["name"], int(metadata["resourceVersion"]))

    for name in ("a", "b", "c"):
        create(name)
    listed = tasks.get(namespace=namespace)
    assert sorted(item.metadata.name for item in listed.items) == ["a", "b", "c"]
    version = listed.metadata.resourceVersion

    writes: list[Record] = []

    def first_batch() -> None:  # written while the first watch is open: live events
        time.sleep(0.3)  # the watch request is sent when the generator is first resumed
        steps: list[Callable[[], Record]] = [
            lambda: create("d"),
            lambda: update("a", "one"),
            lambda: delete("b"),
            lambda: create("e"),
            lambda: update("d", "two"),
            lambda: delete("c"),
        ]
        for step in steps:
            writes.append(step())
            time.sleep(0.05)

    seen: list[Record] = []
    stream = tasks.watch(namespace=namespace, resource_version=version, timeout=10)
    writer = threading.Thread(target=first_batch)
    writer.start()
    for event in stream:
        seen.append(record(event))
        if len(seen) == 3:
            break
    stream.close()  # disconnect: the connection is closed under whatever was in flight
    writer.join()
    assert seen == writes[:3]
    writes += [update("e", "three"), create("f"), delete("a"), update("f", "four")]

    resumed: list[Record] = []
    stream = tasks.watch(namespace=namespace, resource_version=str(seen[-1][2]), timeout=10)
    for event in stream:
        resumed.append(record(event))
        if len(resumed) == len(writes) - len(seen):
            break
    assert resumed == writes[len(seen) :]
    # nothing else is queued before a new change: the next event is exactly that change
    sentinel = create(SENTINEL)
    after = next(stream, None)
    assert after is not None and record(after) == sentinel, after
    stream.close()
    final = tasks.get(namespace=namespace)
    assert sorted(item.metadata.name for item in final.items) == ["d", "e", "f", SENTINEL]
