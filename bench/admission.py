"""The admission phase: what the cluster's ValidatingAdmissionPolicies cost a create.

Three apps in process (the whole write path, no TLS: the least favourable ratio a client
could see), each on its own SQLite store and its own fake cluster: one with no policy, one
with a matching policy of 3 validations, one with 20 policies of which 1 matches (the
others match other resources or operations, as in a cluster with policies for other
kinds). Creates alternate between the three, one request of each in turn, so drift hits
all alike. Then the median cost of one CEL evaluation, on a prepared context. The targets
are issue 15's.
"""

from __future__ import annotations

import statistics
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
from falcon import testing

from bench.report import Goal
from bench.scale import Line
from bench.search import _Everyone, _stdout_discarded
from devtools.certs import new_ca
from handlers.admission.cel import expressions
from proxy.app import create_app
from proxy.settings import Settings
from tests.fakes.cluster import FakeCluster, authentication_data
from tests.fakes.objects import NAMESPACES, VALIDATING_POLICIES, VALIDATING_POLICY_BINDINGS

ROUNDS = 7
PER_ROUND = 300
NAMESPACE = "admission"
PATH = f"/apis/search.task.example.example.com/v1/namespaces/{NAMESPACE}/customtasks"
SPEC = {"priority": 3, "deadline": "2030-01-01T00:00:00Z", "details": "measured"}
VALIDATIONS = [
    {"expression": "object.spec.priority <= 5"},
    {"expression": "object.spec.details.size() < 200", "message": "details too long"},
    {"expression": "!has(object.metadata.labels) || !('forbidden' in object.metadata.labels)"},
]
SETUPS = {"none": 0, "one": 1, "twenty": 20}
"""Each app's policies: how many there are (the first one matches creates of customtasks)."""


def _policies(fake: FakeCluster, count: int) -> None:
    for n in range(count):
        resources = ["customtasks"] if n == 0 else [f"other{n}s"]
        operations = ["CREATE", "UPDATE"] if n == 0 else ["DELETE"]
        rule = {
            "apiGroups": ["search.task.example.example.com"],
            "apiVersions": ["v1"],
            "operations": operations,
            "resources": resources,
        }
        fake.objects.put(
            VALIDATING_POLICIES,
            {
                "metadata": {"name": f"policy-{n}"},
                "spec": {"matchConstraints": {"resourceRules": [rule]}, "validations": VALIDATIONS},
            },
        )
        fake.objects.put(
            VALIDATING_POLICY_BINDINGS,
            {
                "metadata": {"name": f"binding-{n}"},
                "spec": {"policyName": f"policy-{n}", "validationActions": ["Deny"]},
            },
        )


@contextmanager
def _clients(directory: Path) -> Iterator[dict[str, testing.TestClient]]:
    """One app per setup, each reading its own fake cluster, ready (its caches synced)."""
    with ExitStack() as stack:
        stop = threading.Event()
        clients = {}
        for name, count in SETUPS.items():
            fake = stack.enter_context(FakeCluster())
            fake.configmap = authentication_data(new_ca("c").cert_pem, new_ca("fp").cert_pem)
            fake.objects.put(NAMESPACES, {"metadata": {"name": NAMESPACE}})
            _policies(fake, count)
            settings = Settings.from_env(
                {
                    "APISERVER_SQLITE_PATH": str(directory / f"admission-{name}.db"),
                    "APISERVER_KUBECONFIG": str(fake.kubeconfig(directory / f"{name}.kubeconfig")),
                }
            )
            client = testing.TestClient(create_app(settings, authorizer=_Everyone(), stop=stop))
            deadline = time.monotonic() + 30
            while client.simulate_get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the admission caches did not sync"
                time.sleep(0.05)
            clients[name] = client
        stack.callback(stop.set)  # first on the way out: the apps' followers end
        yield clients


def run(directory: Path, say: Callable[[str], None]) -> list[Line]:
    """The phase's figures, from fresh stores and clusters under ``directory``."""
    say("admission: creates with 0, 1 and 20 policies, and one CEL evaluation")
    with _stdout_discarded(), _clients(directory) as clients:
        rates = _alternating(clients)
    none = statistics.median(rates["none"])
    lines = [
        Line(
            "API creates/s, no policy",
            none,
            "/s",
            note=f"in process: median of {ROUNDS} rounds of {PER_ROUND}",
        )
    ]
    for name, what, goal in (
        ("one", "1 matching policy of 3 validations", 0.9),
        ("twenty", "20 policies, 1 matching", 0.85),
    ):
        rate = statistics.median(rates[name])
        lines.append(
            Line(
                f"API creates/s with {what} / with none",
                rate / none,
                "x",
                Goal(goal, at_least=True),
                note=f"{rate:,.0f} / {none:,.0f}",
            )
        )
    lines += _evaluations()
    return lines


def _alternating(clients: dict[str, testing.TestClient]) -> dict[str, list[float]]:
    """Creates per second of each client, one request of each in turn."""
    rates: dict[str, list[float]] = {name: [] for name in clients}
    for number in range(ROUNDS):
        took = dict.fromkeys(clients, 0.0)
        for n in range(PER_ROUND):
            body = orjson.dumps({"metadata": {"name": f"a-{number}-{n}"}, "spec": SPEC})
            for name, client in clients.items():
                began = time.perf_counter()
                answer = client.simulate_post(PATH, body=body)
                took[name] += time.perf_counter() - began
                assert answer.status_code == 201, answer.text
        for name, seconds in took.items():
            rates[name].append(PER_ROUND / seconds)
    return rates


def _evaluations() -> list[Line]:
    """The median cost of one evaluation of ``object.spec.priority <= 5``: on a context
    already made (a policy's second validation), and with the context made for it (its
    first: the object converted for the library)."""
    obj: dict[str, Any] = {"metadata": {"name": "t"}, "spec": SPEC}
    compiled = expressions.compile(VALIDATIONS[0]["expression"])

    def context() -> expressions.Context:
        return expressions.Context(
            object=obj,
            oldObject=None,
            request=None,
            params=None,
            namespaceObject=None,
            authorizer=None,
            variables={},
        )

    made = context()

    def on_made() -> Any:
        return compiled.evaluate(made)

    def on_new() -> Any:
        return compiled.evaluate(context())

    lines = []
    for what, evaluate in (("context made once", on_made), ("context made for it", on_new)):
        evaluate()
        runs = timeit.repeat(evaluate, number=2000, repeat=7)
        lines.append(
            Line(
                f"one CEL evaluation (cel-expr-python), {what}",
                statistics.median(runs) / 2000 * 1e6,
                "µs",
                note="median of 7 runs of 2,000",
            )
        )
    return lines


def title() -> str:
    return "Admission: ValidatingAdmissionPolicy on creates (in process)"
