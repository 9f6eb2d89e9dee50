"""A2-A7 against the real server: front-proxy headers, x509, tokens, SubjectAccessReview.

The server runs under gunicorn with a kubeconfig pointing at a fake cluster that serves the
authentication ConfigMap, TokenReview and SubjectAccessReview, and records what it is asked.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from devtools.certs import Issued, issue, new_ca
from tests.fakes.cluster import FakeCluster, authentication_data
from tests.fakes.objects import NAMESPACES
from tests.support.auditschema import validate_event
from tests.support.servers import Pki, Server, run_server

GV = "/apis/search.task.example.example.com/v1"
TASKS = f"{GV}/namespaces/team/customtasks"
FRONT_PROXY = "front-proxy-client"
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
"""


@dataclass
class Setup:
    server: Server
    cluster: FakeCluster
    front_proxy_ca: Issued
    directory: Path
    audit_id: str = ""  # of the last request()

    def front_proxy(
        self, name: str = FRONT_PROXY, ca: Issued | None = None, **kw: Any
    ) -> tuple[str, str]:
        """A front-proxy client certificate (files)."""
        issued = issue(ca or self.front_proxy_ca, name, client=kw.pop("client", True), **kw)
        return _write(self.directory, f"fp-{name}-{id(issued)}", issued)

    def client(self, name: str, groups: tuple[str, ...] = ()) -> tuple[str, str]:
        return self.server.pki.client(name, groups)

    def request(
        self,
        path: str,
        *,
        cert: tuple[str, str] | None = None,
        headers: Sequence[tuple[str, str]] = (),
        method: str = "GET",
    ) -> tuple[int, dict[str, Any]]:
        """One request with exactly these headers (repeated names kept)."""
        context = ssl.create_default_context(cafile=self.server.pki.ca_file)
        if cert:
            context.load_cert_chain(*cert)
        host, port = self.server.url.removeprefix("https://").split(":")
        conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
        try:
            conn.putrequest(method, path)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            body = response.read()
            self.audit_id = response.getheader("Audit-Id") or ""
        finally:
            conn.close()
        return response.status, orjson.loads(body) if body.startswith(b"{") else {}

    def audited(self, audit_id: str, stages: int) -> list[dict[str, Any]]:
        """The audit log's events of one request, once ``stages`` of them are written."""

        def events() -> list[dict[str, Any]]:
            lines = (self.directory / "audit.log").read_bytes().splitlines()
            return [e for e in map(orjson.loads, lines) if e["auditID"] == audit_id]

        _eventually(lambda: len(events()) >= stages)
        found = events()
        for event in found:
            validate_event(event)
        return found

    def sar_users(self) -> list[str]:
        return [r["spec"]["user"] for r in self.cluster.reviews()]


def _write(directory: Path, label: str, issued: Issued) -> tuple[str, str]:
    cert, key = directory / f"{label}.crt", directory / f"{label}.key"
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    return str(cert), str(key)


def allow(users: set[str]) -> Callable[[dict[str, Any]], tuple[bool, str]]:
    return lambda spec: (spec["user"] in users, "" if spec["user"] in users else "no rule")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("auth")
    pki = Pki.create(directory / "pki")
    front_proxy_ca = new_ca("front-proxy-ca")
    with FakeCluster() as cluster:
        cluster.configmap = authentication_data(
            pki.ca.cert_pem, front_proxy_ca.cert_pem, [FRONT_PROXY]
        )
        cluster.objects.put(NAMESPACES, {"metadata": {"name": "team"}})  # writes go there
        (directory / "policy.yaml").write_text(AUDIT_POLICY)
        env = {
            "APISERVER_KUBECONFIG": str(cluster.kubeconfig(directory / "kubeconfig")),
            "APISERVER_AUTH_REFRESH_SECONDS": "0.3",
            "APISERVER_REVIEW_TIMEOUT_SECONDS": "1",
            "APISERVER_AUDIT_POLICY_FILE": str(directory / "policy.yaml"),
            "APISERVER_AUDIT_LOG_PATH": str(directory / "audit.log"),
            "APISERVER_REQUEST_LOG": "all",
        }
        with run_server(directory, pki=pki, env=env) as server:
            yield Setup(server, cluster, front_proxy_ca, directory)


@pytest.fixture
def fresh(setup: Setup) -> Iterator[Setup]:
    """Each test starts with a clean record, deny-all reviews and no failures."""
    setup.cluster.requests.clear()
    setup.cluster.decide = lambda spec: (False, "")
    setup.cluster.failure = None
    setup.cluster.delay = 0.0
    yield setup


def test_a3_headers_without_a_certificate_are_ignored(fresh: Setup) -> None:
    status, body = fresh.request(TASKS, headers=[("X-Remote-User", "admin")])
    assert status == 403
    assert 'User "system:anonymous"' in body["message"]
    assert fresh.sar_users() == ["system:anonymous"]


def test_a4_client_ca_certificate_with_headers_is_its_cn(fresh: Setup) -> None:
    fresh.cluster.decide = allow({"alice"})
    headers = [
        ("X-Remote-User", "admin"),
        ("X-Remote-Group", "system:masters"),
        ("X_Remote_User", "x"),
    ]
    status, _ = fresh.request(TASKS, cert=fresh.client("alice", ("devs",)), headers=headers)
    assert status == 200
    [review] = fresh.cluster.reviews()
    assert review["spec"]["user"] == "alice"
    assert review["spec"]["groups"] == ["devs", "system:authenticated"]


def test_a3_front_proxy_cn_not_allowed_is_401(fresh: Setup) -> None:
    status, body = fresh.request(
        TASKS, cert=fresh.front_proxy("not-the-proxy"), headers=[("X-Remote-User", "admin")]
    )
    assert (status, body["reason"]) == (401, "Unauthorized")
    assert fresh.cluster.reviews() == []
    # kube's WithFailedAuthenticationAudit: one event of nobody, when the 401 starts
    [event] = fresh.audited(fresh.audit_id, 1)
    assert (event["stage"], event["user"], event["verb"]) == ("ResponseStarted", {}, "list")
    assert event["responseStatus"] == {
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert "annotations" not in event


def test_the_audit_log_records_the_reviews_decision_and_reason(fresh: Setup) -> None:
    fresh.cluster.decide = lambda spec: (spec["user"] == "alice", "RBAC: decided by the test")
    allowed, _ = fresh.request(TASKS, cert=fresh.client("alice"))
    assert allowed == 200
    events = fresh.audited(fresh.audit_id, 2)
    assert events[-1]["annotations"] == {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": "RBAC: decided by the test",
    }
    denied, _ = fresh.request(TASKS, cert=fresh.client("bob"))
    assert denied == 403
    events = fresh.audited(fresh.audit_id, 2)
    assert events[-1]["annotations"] == {
        "authorization.k8s.io/decision": "forbid",
        "authorization.k8s.io/reason": "RBAC: decided by the test",
    }
    assert events[-1]["user"]["username"] == "bob"


def test_a3_allowed_front_proxy_passes_user_groups_extras_and_uid(fresh: Setup) -> None:
    fresh.cluster.decide = allow({"bob"})
    headers = [
        ("X-Remote-User", "bob"),
        ("X-Remote-Group", "team-a"),
        ("X-Remote-Group", "team-b"),
        ("X-Remote-Extra-Scopes", "read"),
        ("X-Remote-Extra-Scopes", "write"),
        ("X-Remote-Extra-Example.com%2fProject", "p1"),
        ("X-Remote-Uid", "uid-123"),
        ("X_Remote_User", "mallory"),
    ]
    status, _ = fresh.request(f"{TASKS}/t1", cert=fresh.front_proxy(), headers=headers)
    assert status == 404  # authorized; the object just does not exist
    [review] = fresh.cluster.reviews()
    assert review["spec"] == {
        "user": "bob",
        "uid": "uid-123",
        "groups": ["team-a", "team-b", "system:authenticated"],
        "extra": {"scopes": ["read", "write"], "example.com/project": ["p1"]},
        "resourceAttributes": {
            "namespace": "team",
            "verb": "get",
            "group": "search.task.example.example.com",
            "version": "v1",
            "resource": "customtasks",
            "subresource": "",
            "name": "t1",
        },
    }


def test_a3_underscore_headers_never_pass_for_front_proxy_headers(fresh: Setup) -> None:
    fresh.cluster.decide = lambda spec: (True, "")
    headers = [("X_Remote_User", "admin"), ("X_Remote_Group", "system:masters")]
    status, body = fresh.request(TASKS, cert=fresh.front_proxy(), headers=headers)
    assert (status, body["reason"]) == (401, "Unauthorized")  # no user asserted: not x509 either
    assert fresh.cluster.reviews() == []


@pytest.mark.parametrize("case", ["expired", "no-client-auth", "unknown-ca"])
def test_a1_bad_certificates_get_no_access(fresh: Setup, case: str) -> None:
    if case == "expired":
        cert = fresh.front_proxy(valid_days=-1)
    elif case == "no-client-auth":
        cert = fresh.front_proxy(client=False, server=True)
    else:
        cert = fresh.front_proxy(ca=new_ca("unknown-ca"))
    try:
        status, _ = fresh.request(
            GV,
            cert=cert,
            headers=[("X-Remote-User", "admin"), ("X-Remote-Group", "system:masters")],
        )
    except (ssl.SSLError, ConnectionError):
        return  # the handshake refused it
    assert status == 401


def test_a7_denied_review_is_403_in_kube_wording(fresh: Setup) -> None:
    fresh.cluster.decide = lambda spec: (False, "no RBAC policy matched")
    status, body = fresh.request(TASKS, cert=fresh.client("carol"))
    assert status == 403
    assert body["message"] == (
        'customtasks.search.task.example.example.com is forbidden: User "carol" cannot list '
        'resource "customtasks" in API group "search.task.example.example.com" in the '
        'namespace "team": no RBAC policy matched'
    )


def test_a7_server_side_apply_that_creates_needs_create_as_well_as_patch(fresh: Setup) -> None:
    verbs = {"heidi": {"patch"}, "ivan": {"patch", "create"}}
    fresh.cluster.decide = lambda spec: (
        spec["resourceAttributes"]["verb"] in verbs.get(spec["user"], set()),
        "not in the test's rules",
    )
    applied = {
        "apiVersion": "search.task.example.example.com/v1",
        "kind": "CustomTask",
        "metadata": {"name": "applied", "namespace": "team"},
        "spec": {"priority": 1, "deadline": "2026-01-01T00:00:00Z"},
    }

    def apply(user: str) -> Any:
        return fresh.server.session(user, groups=()).patch(
            f"{fresh.server.url}{TASKS}/applied",
            params={"fieldManager": "test"},
            data=orjson.dumps(applied),
            headers={"Content-Type": "application/apply-patch+yaml"},
            timeout=30,
        )

    refused = apply("heidi")
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        'customtasks.search.task.example.example.com "applied" is forbidden: User "heidi" '
        'cannot create resource "customtasks" in API group "search.task.example.example.com" '
        'in the namespace "team": not in the test\'s rules'
    )
    assert apply("ivan").status_code == 201
    assert apply("heidi").status_code == 200  # it exists now: patching is enough


@pytest.mark.parametrize("trouble", ["down", "slow"])
def test_a7_review_that_cannot_be_made_refuses(fresh: Setup, trouble: str) -> None:
    fresh.cluster.decide = lambda spec: (True, "")
    if trouble == "down":
        fresh.cluster.failure = 500
    else:
        fresh.cluster.delay = 3.0
    status, body = fresh.request(TASKS, cert=fresh.client(f"dave-{trouble}"))
    assert status >= 400 and status != 200
    assert body["kind"] == "Status"


def test_a7_masters_through_the_front_proxy_needs_no_review(fresh: Setup) -> None:
    headers = [("X-Remote-User", "system:kube-aggregator"), ("X-Remote-Group", "system:masters")]
    status, body = fresh.request(GV, cert=fresh.front_proxy(), headers=headers)
    assert (status, body["kind"]) == (200, "APIResourceList")
    assert fresh.cluster.reviews() == []


def test_a6_health_paths_need_no_certificate(fresh: Setup) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        assert fresh.request(path)[0] == 200
    assert fresh.cluster.reviews() == []


def test_a5_bearer_token_is_reviewed(fresh: Setup) -> None:
    fresh.cluster.tokens = {"tok-erin": {"username": "erin", "uid": "u-e", "groups": ["ops"]}}
    fresh.cluster.decide = allow({"erin"})
    status, _ = fresh.request(TASKS, headers=[("Authorization", "Bearer tok-erin")])
    assert status == 200
    [review] = fresh.cluster.reviews()
    assert (review["spec"]["user"], review["spec"]["groups"]) == (
        "erin",
        ["ops", "system:authenticated"],
    )
    assert fresh.cluster.reviews("tokenreviews")[0]["spec"]["token"] == "tok-erin"
    status, body = fresh.request(TASKS, headers=[("Authorization", "Bearer wrong")])
    assert (status, body["reason"]) == (401, "Unauthorized")


def test_a7_identical_requests_within_the_cache_window_make_one_review(fresh: Setup) -> None:
    """The cache lives in each worker process: one keep-alive connection stays on one worker."""
    fresh.cluster.decide = allow({"frank"})
    context = ssl.create_default_context(cafile=fresh.server.pki.ca_file)
    context.load_cert_chain(*fresh.client("frank"))
    host, port = fresh.server.url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    statuses = set()
    for _ in range(100):
        conn.request("GET", f"{TASKS}?limit=1")
        response = conn.getresponse()
        response.read()
        statuses.add(response.status)
    conn.close()
    assert statuses == {200}
    assert len(fresh.cluster.reviews()) == 1


def test_a2_rotated_request_header_ca_applies_without_restart(fresh: Setup) -> None:
    old_ca = fresh.front_proxy_ca
    new = new_ca("front-proxy-ca-2")
    headers = [("X-Remote-User", "system:kube-aggregator"), ("X-Remote-Group", "system:masters")]
    fresh.cluster.configmap = authentication_data(
        fresh.server.pki.ca.cert_pem, new.cert_pem, [FRONT_PROXY]
    )
    try:
        _eventually(lambda: _status(fresh, GV, fresh.front_proxy(ca=new), headers) == 200)
        assert _status(fresh, GV, fresh.front_proxy(ca=old_ca), headers) != 200
    finally:
        fresh.cluster.configmap = authentication_data(
            fresh.server.pki.ca.cert_pem, old_ca.cert_pem, [FRONT_PROXY]
        )
        _eventually(lambda: _status(fresh, GV, fresh.front_proxy(ca=old_ca), headers) == 200)


def test_a1_rotated_serving_certificate_applies_without_restart(fresh: Setup) -> None:
    pki = fresh.server.pki
    rotated = issue(
        pki.ca, "rotated", dns_names=["localhost"], ip_addresses=["127.0.0.1"], server=True
    )
    crt, key = pki.directory / "serving.crt", pki.directory / "serving.key"
    (pki.directory / "next.key").write_bytes(rotated.key_pem)
    (pki.directory / "next.crt").write_bytes(rotated.cert_pem)
    os.replace(pki.directory / "next.key", key)
    os.replace(pki.directory / "next.crt", crt)
    context = ssl.create_default_context(cafile=pki.ca_file)
    host, port = fresh.server.url.removeprefix("https://").split(":")

    def served_cn() -> str:
        with (
            socket.create_connection((host, int(port))) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            cert = x509.load_der_x509_certificate(der)
            return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)

    _eventually(lambda: served_cn() == "rotated")


def test_a2_missing_request_header_ca_makes_the_server_unready(fresh: Setup) -> None:
    good = fresh.cluster.configmap
    assert good is not None
    fresh.cluster.configmap = {k: v for k, v in good.items() if k != "requestheader-client-ca-file"}
    try:

        def unready_saying_why() -> bool:
            status, text = _readyz(fresh)
            if status != 500 or "[-]authentication failed: reason withheld" not in text:
                return False
            # the reason is withheld from anyone who asks, and logged
            return "[-]authentication failed: " in fresh.server.log() and (
                "requestheader-client-ca-file" in fresh.server.log()
            )

        _eventually(unready_saying_why)
    finally:
        fresh.cluster.configmap = good
        _eventually(lambda: _readyz(fresh)[0] == 200)


def _readyz(setup: Setup) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=setup.server.pki.ca_file)
    host, port = setup.server.url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    conn.request("GET", "/readyz")
    response = conn.getresponse()
    return response.status, response.read().decode()


def _status(
    setup: Setup, path: str, cert: tuple[str, str], headers: Sequence[tuple[str, str]]
) -> int:
    try:
        return setup.request(path, cert=cert, headers=headers)[0]
    except (ssl.SSLError, ConnectionError):
        return 0


def _eventually(condition: Callable[[], bool], timeout: float = 15.0, times: int = 12) -> None:
    """Wait until ``condition`` holds ``times`` checks in a row: each check is a new
    connection, which may land on any worker, and every worker refreshes on its own."""
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < times:
        assert time.monotonic() < deadline, "condition not met in time"
        streak = streak + 1 if condition() else 0
        if not streak:
            time.sleep(0.1)


def test_request_log_is_one_json_line_per_request_with_its_id(fresh: Setup) -> None:
    fresh.cluster.decide = allow({"grace"})
    context = ssl.create_default_context(cafile=fresh.server.pki.ca_file)
    context.load_cert_chain(*fresh.client("grace", ("qa",)))
    host, port = fresh.server.url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    conn.request("GET", f"{TASKS}/missing")
    response = conn.getresponse()
    response.read()
    conn.close()
    request_id = response.getheader("X-Request-Id")
    assert response.status == 404 and request_id

    def logged() -> list[dict[str, Any]]:
        lines = [line for line in fresh.server.log().splitlines() if request_id in line]
        return [orjson.loads(line) for line in lines]

    _eventually(lambda: len(logged()) == 1)
    [line] = logged()
    assert line["requestId"] == request_id
    assert (line["user"], line["groups"]) == ("grace", ["qa", "system:authenticated"])
    assert (line["verb"], line["resource"], line["namespace"], line["name"]) == (
        "get",
        "customtasks",
        "team",
        "missing",
    )
    assert line["code"] == 404
    assert line["latencyMs"] >= 0


def test_refused_requests_are_logged_too(fresh: Setup) -> None:
    context = ssl.create_default_context(cafile=fresh.server.pki.ca_file)
    host, port = fresh.server.url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    conn.request("GET", TASKS)
    response = conn.getresponse()
    response.read()
    conn.close()
    request_id = response.getheader("X-Request-Id")
    assert response.status == 403 and request_id
    _eventually(lambda: f'"requestId":"{request_id}"' in fresh.server.log())
    line = next(ln for ln in fresh.server.log().splitlines() if request_id in ln)
    assert orjson.loads(line)["code"] == 403
    assert orjson.loads(line)["user"] == "system:anonymous"
