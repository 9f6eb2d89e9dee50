"""R3, O4: the property tests of ``tests/app/test_fuzz.py``, once against the real server.

The same document, configuration and checks (:mod:`tests.support.fuzz`), sent over TLS with
an admin client certificate to gunicorn: what the in-process app cannot show (real sockets,
chunked watch streams, the worker's body reading, x509 authentication) is in the path of every
case. The fuzzing phase alone, with fewer examples: the in-process run covers the schema's
boundaries. combinedtasks are left out, as there (:data:`tests.support.fuzz.CLUSTER_KINDS`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
from hypothesis import HealthCheck, settings
from schemathesis import Case

from handlers.registry import registry
from proxy.openapi import OpenAPI
from tests.support import fuzz
from tests.support.servers import Server

DOCUMENT = OpenAPI(registry()).v3
schema = fuzz.load(orjson.loads(DOCUMENT), max_examples=10, coverage=False)


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[requests.Session]:
    """A session presenting an admin (``system:masters``) client certificate."""
    with requests.Session() as session:
        session.trust_env = False
        session.verify = server.pki.ca_file
        session.cert = server.pki.client("admin", ("system:masters",))
        yield session


def test_o3_the_server_serves_the_fuzzed_document(server: Server, admin: requests.Session) -> None:
    assert admin.get(server.url + fuzz.GV_PATH, timeout=30).content == DOCUMENT


@pytest.fixture
def seeded(server: Server, admin: requests.Session) -> None:
    """The objects the steered cases address, there again for each operation (an earlier one
    may have deleted them)."""
    for path, obj in fuzz.seeds():
        created = admin.post(server.url + path, json=obj, timeout=30)
        assert created.status_code in (201, 409), created.text


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # seeded per operation
def test_r3_every_operation_answers_kube_style_over_tls(
    case: Case[Any], server: Server, admin: requests.Session, seeded: None
) -> None:
    fuzz.bound_watch(case)
    fuzz.pin_revision(case, lambda path: _revision(admin, server.url + path))
    # TLS per call: schemathesis' own default (verify) would take the session's place.
    response = case.call(
        base_url=server.url,
        session=admin,
        verify=server.pki.ca_file,
        cert=server.pki.client("admin", ("system:masters",)),
        timeout=30,
    )
    case.validate_response(response, checks=fuzz.checks(case))


def _revision(session: requests.Session, url: str) -> str | None:
    found = session.get(url, timeout=30)
    return str(found.json()["metadata"]["resourceVersion"]) if found.status_code == 200 else None
