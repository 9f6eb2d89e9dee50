"""The ownership phase: what keeping managedFields costs a write, and what an apply costs.

Two apps in process (the API's whole write path: decoding, defaults, validation, the field
manager, the store, the answer; no TLS, so the ratio is the least favourable a client could
see), each on its own SQLite store, one with managedFields kept and one with them off
(``APISERVER_MANAGED_FIELDS=false``, a setting for this measurement only). Creates and merge
patches alternate between the two, one request of each in turn, so drift hits both alike.
Then server-side applies to an object carrying 20 labels and 3 managers, each apply changing
one label's value so that every one writes. The targets are issue 14's.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from falcon import testing

from bench.report import Goal
from bench.scale import Line
from bench.search import _Everyone, _stdout_discarded
from proxy.app import create_app
from proxy.settings import Settings

ROUNDS = 7
PER_ROUND = 300
APPLIES = 300
PATH = "/apis/search.task.example.example.com/v1/namespaces/ownership/customtasks"
GV = "search.task.example.example.com/v1"
SPEC = {"priority": 3, "deadline": "2030-01-01T00:00:00Z", "details": "measured"}
MERGE = {"Content-Type": "application/merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}


def _client(directory: Path, kept: bool) -> testing.TestClient:
    settings = Settings.from_env(
        {
            "APISERVER_SQLITE_PATH": str(directory / f"ownership-{int(kept)}.db"),
            "APISERVER_MANAGED_FIELDS": "true" if kept else "false",
        }
    )
    return testing.TestClient(create_app(settings, authorizer=_Everyone()))


def run(directory: Path, say: Callable[[str], None]) -> list[Line]:
    """The phase's figures, from fresh stores under ``directory``."""
    clients = {kept: _client(directory, kept) for kept in (True, False)}
    say("ownership: creates and merge patches with and without managedFields")
    with _stdout_discarded():  # the request log: a line per request
        creates = _alternating(clients, _create)
        patches = _alternating(clients, _merge_patch)
        applies = _applies(clients[True])
    return [
        _ratio("API creates/s", creates),
        _ratio("API merge patches/s", patches),
        Line(
            "applies/s, 20 labels and 3 managers",
            statistics.median(applies),
            "/s",
            note=f"in process: median of {len(applies)} rounds of {APPLIES // len(applies)}",
        ),
    ]


def _ratio(what: str, rates: dict[bool, list[float]]) -> Line:
    kept, off = statistics.median(rates[True]), statistics.median(rates[False])
    return Line(
        f"{what} with / without managedFields",
        kept / off,
        "x",
        Goal(0.85, at_least=True),
        note=f"in process: medians of {ROUNDS} rounds of {PER_ROUND}: {kept:,.0f} / {off:,.0f}",
    )


Request = Callable[[testing.TestClient, str], testing.Result]


def _alternating(
    clients: dict[bool, testing.TestClient], request: Request
) -> dict[bool, list[float]]:
    """Requests per second of each client, one request of each in turn."""
    rates: dict[bool, list[float]] = {True: [], False: []}
    for number in range(ROUNDS):
        took = {True: 0.0, False: 0.0}
        for n in range(PER_ROUND):
            for kept, client in clients.items():
                began = time.perf_counter()
                answer = request(client, f"o-{number}-{n}")
                took[kept] += time.perf_counter() - began
                assert answer.status_code in (200, 201), answer.text
        for kept, seconds in took.items():
            rates[kept].append(PER_ROUND / seconds)
    return rates


def _create(client: testing.TestClient, name: str) -> testing.Result:
    body = orjson.dumps({"metadata": {"name": name}, "spec": SPEC})
    return client.simulate_post(PATH, body=body, params={"fieldManager": "bench"})


def _merge_patch(client: testing.TestClient, name: str) -> testing.Result:
    """A merge patch of an object the creates made, by another manager than its creator."""
    body = orjson.dumps({"metadata": {"labels": {"patched": name}}, "spec": {"priority": 7}})
    return client.simulate_patch(
        f"{PATH}/{name}", body=body, headers=MERGE, params={"fieldManager": "patcher"}
    )


def _configuration(labels: range, value: str) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": GV,
            "kind": "CustomTask",
            "metadata": {"name": "applied", "labels": {f"label-{i}": value for i in labels}},
            "spec": SPEC,
        }
    )


def _applies(client: testing.TestClient) -> list[float]:
    """Applies per second by one of three managers of a 20-label object."""
    url = f"{PATH}/applied"
    for manager, labels in (("first", range(0, 8)), ("second", range(8, 16))):
        answer = client.simulate_patch(
            url, body=_configuration(labels, "a"), headers=APPLY, params={"fieldManager": manager}
        )
        assert answer.status_code in (200, 201), answer.text
    extra = orjson.dumps({"metadata": {"labels": {f"label-{i}": "u" for i in range(16, 20)}}})
    answer = client.simulate_patch(url, body=extra, headers=MERGE, params={"fieldManager": "third"})
    assert answer.status_code == 200, answer.text
    rates = []
    per_round = APPLIES // ROUNDS
    for number in range(ROUNDS):
        began = time.perf_counter()
        for n in range(per_round):
            body = _configuration(range(0, 8), f"v{number}-{n}")
            answer = client.simulate_patch(
                url, body=body, headers=APPLY, params={"fieldManager": "first"}
            )
            assert answer.status_code == 200, answer.text
        rates.append(per_round / (time.perf_counter() - began))
    managers = orjson.loads(answer.content)["metadata"]["managedFields"]
    assert len(managers) == 3 and len(orjson.loads(answer.content)["metadata"]["labels"]) == 20
    return rates


def title() -> str:
    return "Ownership (managedFields, server-side apply), SQLite, in process"
