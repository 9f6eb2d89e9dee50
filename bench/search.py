"""The search phase: what ``details?q=`` queries cost on 100,000 indexed documents, against a
``LIKE '%word%'`` scan of the same table, and what indexing costs a create.

The documents are tasks whose details are 20 to 40 words drawn from a vocabulary of 400, plus
a word planted in 50 of them (a selective query: under 100 hits) and one in 10% of them (a
broad query, whose first page of 500 is timed). Queries run on the store, in process, as
:meth:`store.Store.search` (the endpoint adds the same HTTP cost as any get); creates are
timed in alternating rounds with and without a search document, through the store's create
and through the API's whole write path in process;
the index lag is timed from a Task change in a fake cluster to a search that finds it, the
server's Task indexer following the cluster in between. The targets are issue 13's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
from falcon import testing

from bench.report import Goal, percentile
from bench.scale import Engine, Line
from handlers.registry import Served, registry
from k8s.client import Cluster
from k8s.taskindex import TaskIndexer
from proxy.app import create_app
from proxy.authz import Decision
from proxy.settings import Settings
from store import New, Store
from store.fulltext import Document
from store.search import parse
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import TASKS

DOCUMENTS = 100_000
CHUNK = 10_000
RARE, RARE_COUNT = "zephyrine", 50
COMMON, COMMON_EVERY = "replica", 10  # in one document of 10
TIMES = 20
CREATE_ROUNDS, CREATES_PER_ROUND = 5, 500
API_CREATES_PER_ROUND, API_CREATE_ROUNDS = 300, 9
API_CREATES = "/apis/search.task.example.example.com/v1/namespaces/creates/customtasks"
LAG_RATE, LAG_SECONDS = 100, 10
_VOCABULARY = [f"w{n:03d}" for n in range(400)]
T = TypeVar("T")


def details(number: int, rng: random.Random) -> str:
    words = rng.choices(_VOCABULARY, k=rng.randint(20, 40))
    if number % COMMON_EVERY == 0:
        words.insert(len(words) // 2, COMMON)
    if number % (DOCUMENTS // RARE_COUNT) == 1:
        words.insert(len(words) // 3, RARE)
    return " ".join(words)


def _document(number: int, text: str) -> Document:
    return Document("CustomTask", 1, number % 11, text)


def fill(store: Store) -> None:
    rng = random.Random(13)
    for start in range(0, DOCUMENTS, CHUNK):
        store.load(
            "customtasks",
            [
                New("search", f"d-{n:06d}", _object(f"d-{n:06d}"), {}, _document(n, text))
                for n in range(start, start + CHUNK)
                for text in [details(n, rng)]
            ],
        )


def _object(name: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "search"}, "spec": {}}


def _timed(call: Callable[[], T], times: int = TIMES) -> tuple[float, T]:
    """The median seconds of ``times`` calls, and the result of a first, unmeasured one."""
    result = call()
    took = []
    for _ in range(times):
        began = time.perf_counter()
        call()
        took.append(time.perf_counter() - began)
    return percentile(took, 50), result


def run(engine: Engine, say: Callable[[str], None]) -> list[Line]:
    """The phase on one engine's fresh store."""
    store = engine.open()
    try:
        say(f"search: {engine.name}, indexing {DOCUMENTS:,} documents")
        fill(store)
        selective, hits = _timed(lambda: store.search(parse(RARE), 500))
        broad, page = _timed(lambda: store.search(parse(COMMON), 500))
        scan, found = _timed(
            lambda: engine.query(f"SELECT COUNT(*) FROM documents WHERE details LIKE '%{RARE}%'"),
            5,
        )
        say(f"search: {engine.name}, creates with and without a document")
        with_index, without = _creates(store)
        api_with, api_without = _api_creates(store)
        say(f"search: {engine.name}, index lag of {LAG_RATE} Task changes/s")
        lags = _lags(store)
    finally:
        store.close()
    bound = engine.allowance
    return [
        Line(
            f"selective query ({len(hits)} hits)",
            selective * 1000,
            "ms",
            Goal(10 * bound, False),
        ),
        Line(
            f"broad query, first page of {len(page)}", broad * 1000, "ms", Goal(50 * bound, False)
        ),
        Line(f"LIKE scan of the same table ({found[0]} rows)", scan * 1000, "ms"),
        Line(
            f"index lag p99, {LAG_RATE} Task changes/s",
            percentile(lags, 99) * 1000,
            "ms",
            Goal(1000 * bound, False),
            note=f"{len(lags)} changes, median {percentile(lags, 50) * 1000:.0f} ms",
        ),
        Line("selective query / LIKE scan", selective / scan, "x"),
        Line(  # the target is a client's create: the next line
            "store creates/s with / without a search document",
            statistics.median(with_index) / statistics.median(without),
            "x",
            note=f"store: medians of {CREATE_ROUNDS} rounds of {CREATES_PER_ROUND}: "
            f"{statistics.median(with_index):,.0f} / {statistics.median(without):,.0f}",
        ),
        Line(
            "API creates/s with / without a search document",
            statistics.median(api_with) / statistics.median(api_without),
            "x",
            Goal(0.85, at_least=True),
            note=f"in process: medians of {API_CREATE_ROUNDS} rounds of {API_CREATES_PER_ROUND}: "
            f"{statistics.median(api_with):,.0f} / {statistics.median(api_without):,.0f}",
        ),
    ]


def _creates(store: Store) -> tuple[list[float], list[float]]:
    """Creates per second in alternating rounds, with and without a document."""
    rng = random.Random(7)
    rates: dict[bool, list[float]] = {True: [], False: []}
    for round_number in range(CREATE_ROUNDS):
        for indexed in (True, False):
            began = time.perf_counter()
            for n in range(CREATES_PER_ROUND):
                name = f"c-{int(indexed)}-{round_number}-{n}"
                text = details(n, rng)
                document = _document(n, text) if indexed else None
                store.create("customtasks", "creates", name, _object(name), {}, document)
            rates[indexed].append(CREATES_PER_ROUND / (time.perf_counter() - began))
    return rates[True], rates[False]


class _Everyone:
    def authorize(self, user: object, info: object) -> Decision:
        return Decision(True)


def _api_creates(store: Store) -> tuple[list[float], list[float]]:
    """Creates per second through the API's whole write path in process (decoding,
    defaults, validation, the store, the answer; no TLS), one create of each in turn:
    CustomTasks as declared, and the same kind declared without a search document."""
    settings = Settings.from_env({})
    clients = {
        indexed: testing.TestClient(
            create_app(settings, store=store, authorizer=_Everyone(), kinds=_kinds(indexed))
        )
        for indexed in (True, False)
    }
    rng = random.Random(11)
    rates: dict[bool, list[float]] = {True: [], False: []}
    for round_number in range(API_CREATE_ROUNDS):
        took = {True: 0.0, False: 0.0}
        with _stdout_discarded():  # the request log: a line per create
            for n in range(API_CREATES_PER_ROUND):
                text = details(n, rng)
                for indexed, client in clients.items():  # one of each in turn: drift hits both
                    spec = {"priority": 3, "deadline": "2030-01-01T00:00:00Z", "details": text}
                    name = f"api-{int(indexed)}-{round_number}-{n}"
                    body = orjson.dumps({"metadata": {"name": name}, "spec": spec})
                    began = time.perf_counter()
                    answer = client.simulate_post(API_CREATES, body=body)
                    took[indexed] += time.perf_counter() - began
                    assert answer.status_code == 201, answer.text
        for indexed, seconds in took.items():
            rates[indexed].append(API_CREATES_PER_ROUND / seconds)
    return rates[True], rates[False]


@contextlib.contextmanager
def _stdout_discarded() -> Iterator[None]:
    saved = os.dup(1)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _kinds(indexed: bool) -> tuple[Served, ...]:
    """The served kinds; without ``indexed``, CustomTask declares no search document."""
    if indexed:
        return registry()
    return tuple(
        dataclasses.replace(s, kind=dataclasses.replace(s.kind, document=None))
        if s.kind.plural == "customtasks"
        else s
        for s in registry()
    )


def _lags(store: Store, seconds: int = LAG_SECONDS) -> list[float]:
    """Seconds from a Task change in the (fake) cluster to a search that finds it, for
    ``LAG_RATE`` changes a second over ``seconds``, each to another task (a change's word is
    never overwritten before it is found): the server's Task indexer (list, then watch over
    HTTPS) writes the store; a prober searches for each change's word in turn (the indexer
    applies changes in order, so one found means those before it are too)."""
    with tempfile.TemporaryDirectory() as directory, FakeCluster() as fake:
        tasks = LAG_RATE * seconds
        for n in range(tasks):
            fake.objects.put(TASKS, _task(n, "before the indexer"))
        cluster = Cluster.from_environment(str(fake.kubeconfig(Path(directory))))
        assert cluster is not None
        stop = threading.Event()
        indexer = threading.Thread(target=TaskIndexer(store, cluster, stop).run, daemon=True)
        indexer.start()
        try:
            _until(lambda: len(store.search(parse("+kind:task"), tasks)) == tasks)
            changed: list[float] = []
            changes = LAG_RATE * seconds

            def drive() -> None:
                start = time.perf_counter()
                for k in range(changes):
                    time.sleep(max(0.0, start + k / LAG_RATE - time.perf_counter()))
                    task = _task(k, f"change lag{k:06d}")
                    changed.append(time.perf_counter())
                    fake.objects.patch(
                        TASKS, "lag", task["metadata"]["name"], {"spec": task["spec"]}
                    )

            driver = threading.Thread(target=drive, daemon=True)
            driver.start()
            lags = []
            for k in range(changes):
                _until(functools.partial(_found, store, f"+lag{k:06d}"))
                lags.append(time.perf_counter() - changed[k])
            driver.join()
        finally:
            stop.set()
            fake.objects.cut_watches()
            indexer.join(timeout=10)
    return lags


def _found(store: Store, query: str) -> bool:
    return bool(store.search(parse(query), 1))


def _task(n: int, details: str) -> dict[str, Any]:
    spec = {"priority": n % 11, "deadline": "2030-01-01T00:00:00Z", "details": details}
    return {"metadata": {"name": f"lag-{n:05d}", "namespace": "lag"}, "spec": spec}


def _until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the Task indexer fell behind by a minute")
        time.sleep(0.001)


def title(name: str) -> str:
    """The search table's title on engine ``name``."""
    return f"Search, {name}: {DOCUMENTS:,} indexed documents, queries on the store"
