"""R3, O4: property tests of the in-process app over its own OpenAPI document.

schemathesis derives requests from ``/openapi/v3/apis/search.task.example.example.com/v1``
for every operation (and breaks them on purpose): bodies with wrong types in metadata,
out-of-range integers, odd names and parameters. No answer may be a 5xx, every error must be a
``metav1.Status``, and every success must match the document. What is checked and why:
:mod:`tests.support.fuzz`. combinedtasks are left out (:data:`tests.support.fuzz.CLUSTER_KINDS`).

The document is read when the module is collected, before any fixture exists (schemathesis'
loader from a fixture does not run under pytest 9), so it is the prebuilt one the app serves
(the first test proves the two the same), and each case is sent
to a fresh app on its own store, seeded with the objects the steered cases address
(:func:`tests.support.fuzz.seeds`), through WSGI.
"""

from __future__ import annotations

from typing import Any

import falcon.testing
import orjson
import pytest
from hypothesis import HealthCheck, settings
from schemathesis import Case

from handlers.registry import registry
from proxy.openapi import OpenAPI
from tests.support import fuzz

DOCUMENT = OpenAPI(registry()).v3
schema = fuzz.load(orjson.loads(DOCUMENT), max_examples=10, coverage=True)


def test_o3_the_fuzzed_document_is_the_one_served(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get(fuzz.GV_PATH).content == DOCUMENT


@pytest.fixture
def seeded(client: falcon.testing.TestClient) -> falcon.testing.TestClient:
    """A fresh app with the objects the steered cases address."""
    for path, obj in fuzz.seeds():
        assert client.simulate_post(path, json=obj).status_code == 201
    return client


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one app per operation
def test_r3_every_operation_answers_kube_style(
    case: Case[Any], seeded: falcon.testing.TestClient
) -> None:
    client = seeded
    fuzz.bound_watch(case)
    fuzz.pin_revision(case, lambda path: _revision(client, path))
    app = fuzz.hanging_up(client.app) if fuzz.may_watch(case) else client.app
    response = case.call(app=app)
    case.validate_response(response, checks=fuzz.checks(case))


def _revision(client: falcon.testing.TestClient, path: str) -> str | None:
    found = client.simulate_get(path)
    return found.json["metadata"]["resourceVersion"] if found.status_code == 200 else None
