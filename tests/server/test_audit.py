"""The audit log of the real server (gunicorn, two workers, TLS) under an ``audit.k8s.io/v1``
Policy: for a create, a denied request, a watch and a patch at each level, the events kube
writes (their stages, objectRef, responseStatus, bodies by level, annotations), each valid
against the Event's schema; ``omitStages``, ``omitManagedFields``, level None; the audit ID
is the caller's ``Audit-ID`` or a new one, sent back as ``Audit-Id``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from tests.support.auditschema import validate_event
from tests.support.clusterapp import eventually
from tests.support.servers import Server, run_server

GROUP = "search.task.example.example.com"
GV = f"/apis/{GROUP}/v1"
TASKS = f"{GV}/namespaces/team/customtasks"
SPEC = {"priority": 1, "deadline": "2026-01-01T00:00:00Z"}
POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: []
rules:
  - level: None
    users: [nobody]
  - level: Metadata
    users: [quiet]
    omitStages: [RequestReceived]
  - level: RequestResponse
    users: [lean]
    omitManagedFields: true
  - level: Metadata
    users: [meta]
  - level: Request
    users: [req]
  - level: RequestResponse
    users: [full]
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
  - level: Metadata
"""


@dataclass
class Setup:
    server: Server
    log: Path

    def events(self, audit_id: str) -> list[dict[str, Any]]:
        """The events of one request, each checked against the Event schema."""
        found = []
        for line in self.log.read_bytes().splitlines():
            event = orjson.loads(line)
            validate_event(event)
            if event["auditID"] == audit_id:
                found.append(event)
        return found

    def complete(self, audit_id: str, stages: int) -> list[dict[str, Any]]:
        """The events of a request once all ``stages`` of them are written."""
        eventually(lambda: len(self.events(audit_id)) >= stages, f"{stages} stages logged")
        return self.events(audit_id)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("audit")
    (directory / "policy.yaml").write_text(POLICY)
    env = {
        "APISERVER_AUDIT_POLICY_FILE": str(directory / "policy.yaml"),
        "APISERVER_AUDIT_LOG_PATH": str(directory / "logs" / "audit.log"),
    }
    with run_server(directory, env=env, workers=2) as server:
        yield Setup(server, directory / "logs" / "audit.log")


def as_user(setup: Setup, name: str, *, allowed: bool = True) -> requests.Session:
    """A session of ``name``; allowed (in system:masters) or refused by authorization."""
    return setup.server.session(name, ("system:masters",) if allowed else ("devs",))


def task(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": SPEC}


def object_ref(name: str = "") -> dict[str, str]:
    ref = {"resource": "customtasks", "namespace": "team", "apiGroup": GROUP, "apiVersion": "v1"}
    return {**ref, "name": name} if name else ref


@pytest.mark.parametrize("level", ["Metadata", "Request", "RequestResponse"])
def test_a_create_is_logged_at_its_level(setup: Setup, level: str) -> None:
    user = {"Metadata": "meta", "Request": "req", "RequestResponse": "full"}[level]
    body = task(f"created-{user}")
    answer = as_user(setup, user).post(f"{setup.server.url}{TASKS}", json=body)
    assert answer.status_code == 201, answer.text
    audit_id = answer.headers["Audit-Id"]
    assert answer.headers["X-Request-Id"] == audit_id
    received, complete = setup.complete(audit_id, 2)
    assert [received["stage"], complete["stage"]] == ["RequestReceived", "ResponseComplete"]
    for event in (received, complete):
        assert (event["kind"], event["apiVersion"], event["level"]) == (
            "Event",
            "audit.k8s.io/v1",
            level,
        )
        assert event["verb"] == "create"
        assert event["requestURI"] == TASKS
        assert event["user"]["username"] == user
        assert event["user"]["groups"] == ["system:masters", "system:authenticated"]
        assert list(event["user"]["extra"]) == ["authentication.kubernetes.io/credential-id"]
        assert event["sourceIPs"] == ["127.0.0.1"]
        assert event["userAgent"].startswith("python-requests/")
        assert event["requestReceivedTimestamp"] == received["requestReceivedTimestamp"]
    assert received["objectRef"] == object_ref()
    assert "responseStatus" not in received and "annotations" not in received
    assert complete["objectRef"] == object_ref(body["metadata"]["name"])  # from the body
    assert complete["responseStatus"] == {"metadata": {}, "code": 201}
    assert complete["annotations"] == {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": "",
    }
    assert complete["stageTimestamp"] >= complete["requestReceivedTimestamp"]
    assert ("requestObject" in complete) == (level != "Metadata")
    if level != "Metadata":
        assert complete["requestObject"] == body  # as sent, before defaults
    assert ("responseObject" in complete) == (level == "RequestResponse")
    if level == "RequestResponse":
        assert complete["responseObject"] == answer.json()
        assert complete["responseObject"]["metadata"]["managedFields"]


def test_a_denied_request_records_the_refusal_and_its_reason(setup: Setup) -> None:
    answer = as_user(setup, "meta", allowed=False).get(f"{setup.server.url}{TASKS}/x")
    assert answer.status_code == 403
    received, complete = setup.complete(answer.headers["Audit-Id"], 2)
    assert received["verb"] == complete["verb"] == "get"
    assert complete["objectRef"] == object_ref("x")
    status = answer.json()
    assert complete["responseStatus"] == {
        "metadata": {},
        "status": "Failure",
        "message": status["message"],
        "reason": "Forbidden",
        "details": status["details"],
        "code": 403,
    }
    assert complete["annotations"] == {
        "authorization.k8s.io/decision": "forbid",
        "authorization.k8s.io/reason": "no cluster is configured to review access",
    }


@pytest.mark.parametrize("user", ["meta", "full"])
def test_a_watch_is_logged_when_it_starts_and_when_it_ends(setup: Setup, user: str) -> None:
    url = f"{setup.server.url}{TASKS}?watch=true&timeoutSeconds=1"
    with as_user(setup, user).get(url, stream=True) as watch:
        audit_id = watch.headers["Audit-Id"]
        started = setup.complete(audit_id, 2)  # while it is open
        assert [e["stage"] for e in started] == ["RequestReceived", "ResponseStarted"]
        list(watch.iter_lines())
    events = setup.complete(audit_id, 3)
    assert [e["stage"] for e in events] == [
        "RequestReceived",
        "ResponseStarted",
        "ResponseComplete",
    ]
    assert {e["verb"] for e in events} == {"watch"}
    assert (
        events[1]["responseStatus"] == events[2]["responseStatus"] == {"metadata": {}, "code": 200}
    )
    assert events[2]["stageTimestamp"] > events[1]["stageTimestamp"]
    assert all("responseObject" not in e for e in events)  # a stream is not a body


@pytest.mark.parametrize("level", ["Metadata", "Request", "RequestResponse"])
def test_a_patch_logs_the_patch_as_sent(setup: Setup, level: str) -> None:
    user = {"Metadata": "meta", "Request": "req", "RequestResponse": "full"}[level]
    name = f"patched-{user}"
    session = as_user(setup, user)
    assert session.post(f"{setup.server.url}{TASKS}", json=task(name)).status_code == 201
    patch = {"metadata": {"labels": {"tier": "gold"}}}
    answer = session.patch(
        f"{setup.server.url}{TASKS}/{name}",
        data=orjson.dumps(patch),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 200, answer.text
    complete = setup.complete(answer.headers["Audit-Id"], 2)[-1]
    assert complete["verb"] == "patch"
    assert complete["objectRef"] == object_ref(name)
    assert complete["responseStatus"] == {"metadata": {}, "code": 200}
    assert complete.get("requestObject") == (patch if level != "Metadata" else None)
    assert ("responseObject" in complete) == (level == "RequestResponse")


def test_omitted_stages_and_managed_fields_and_level_none(setup: Setup) -> None:
    quiet = as_user(setup, "quiet").post(f"{setup.server.url}{TASKS}", json=task("quiet"))
    [only] = setup.complete(quiet.headers["Audit-Id"], 1)
    assert only["stage"] == "ResponseComplete"

    lean = as_user(setup, "lean").post(f"{setup.server.url}{TASKS}", json=task("lean"))
    complete = setup.complete(lean.headers["Audit-Id"], 2)[-1]
    assert lean.json()["metadata"]["managedFields"]
    assert "managedFields" not in complete["responseObject"]["metadata"]

    nobody = as_user(setup, "nobody").post(f"{setup.server.url}{TASKS}", json=task("nobody"))
    marker = as_user(setup, "meta").get(f"{setup.server.url}{TASKS}/nobody")
    setup.complete(marker.headers["Audit-Id"], 2)  # written after the one before it
    assert setup.events(nobody.headers["Audit-Id"]) == []


def test_the_callers_audit_id_and_forwarded_addresses_are_kept(setup: Setup) -> None:
    answer = as_user(setup, "meta").get(
        f"{setup.server.url}{TASKS}/x",
        headers={"Audit-ID": "aggregator-id-1", "X-Forwarded-For": "10.1.2.3, 10.0.0.9"},
    )
    assert answer.headers["Audit-Id"] == "aggregator-id-1"
    events = setup.complete("aggregator-id-1", 2)
    assert {tuple(e["sourceIPs"]) for e in events} == {("10.1.2.3", "10.0.0.9", "127.0.0.1")}


def test_the_audit_log_on_stdout(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    env = {"APISERVER_AUDIT_POLICY_FILE": str(tmp_path / "policy.yaml")}  # the path: "-"
    with run_server(tmp_path, env=env, workers=1) as server:
        answer = server.session("meta").get(f"{server.url}{TASKS}/x")
        audit_id = answer.headers["Audit-Id"]

        def logged() -> list[dict[str, Any]]:
            lines = [orjson.loads(line) for line in server.log_path.read_bytes().splitlines()]
            return [e for e in lines if e.get("kind") == "Event" and e["auditID"] == audit_id]

        eventually(lambda: len(logged()) == 2, "two stages on stdout")
    for event in logged():
        validate_event(event)
