"""Deploying to a cluster: the manifests under k8s/manifests and the image (contract P2, A8).

Every overlay renders with ``kubectl kustomize`` and validates against the Kubernetes schemas
(``kubernetes-validate``); the objects agree with each other and with the code (APIService
rules, named ports, probes, RBAC, the Procfile's commands, the Dockerfile). Then the server is
run the way the Deployment runs it (its command and environment, in-cluster configuration
from a service-account directory, the authentication ConfigMap served by the fake cluster)
and passes the aggregator's availability check and its aggregated discovery fetch.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import orjson
import pytest
from cryptography import x509

from devtools import clustercerts
from devtools.certs import issue, new_ca
from handlers.api import GROUP, VERSION
from tests.fakes.cluster import FakeCluster, authentication_data
from tests.support.kustomize import Docs, render
from tests.support.servers import ROOT, free_port

MANIFESTS = ROOT / "k8s" / "manifests"
OVERLAYS = ("base", "overlays/sqlite", "overlays/postgres", "local")  # local: `make certs`
KUBERNETES = ("1.31.0", "1.33.0")  # selectableFields of the CRD need 1.31
CERT_MANAGER = "cert-manager.io/v1"  # custom resources: no schema in kubernetes-validate
NAMESPACE, SERVICE = "task-search", "task-search-api"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Docs]:
    """Each overlay rendered; ``local`` is what `make certs` writes, beside a copy of the tree."""
    copy = tmp_path_factory.mktemp("manifests") / "manifests"
    shutil.copytree(MANIFESTS, copy, ignore=shutil.ignore_patterns("local"))
    clustercerts.write(copy / "local")
    return {name: render(copy / name) for name in OVERLAYS}


def one(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def container(docs: Docs, deployment: str) -> dict[str, Any]:
    spec = one(docs, "Deployment", deployment)["spec"]["template"]["spec"]
    first: dict[str, Any] = spec["containers"][0]
    return first


def procfile(process: str) -> list[str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return shlex.split(
        next(line for line in lines if line.startswith(f"{process}:")).split(":", 1)[1]
    )


# the manifests


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_validates_against_the_kubernetes_schemas(
    rendered: dict[str, Docs], overlay: str
) -> None:
    for doc in rendered[overlay]:
        if doc["apiVersion"] == CERT_MANAGER:
            continue
        for version in KUBERNETES:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{overlay}: {doc['kind']} {doc['metadata']['name']}: {error}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p2_the_apiservice_points_at_the_service_by_the_rules(
    rendered: dict[str, Docs], overlay: str
) -> None:
    docs = rendered[overlay]
    spec = one(docs, "APIService", f"{VERSION}.{GROUP}")["spec"]
    assert (spec["group"], spec["version"]) == (GROUP, VERSION)
    assert 0 < spec["groupPriorityMinimum"] <= 20000 and 0 < spec["versionPriority"] <= 1000
    assert not (spec.get("insecureSkipTLSVerify") and spec.get("caBundle"))
    service = one(docs, "Service", spec["service"]["name"])
    assert service["metadata"]["namespace"] == spec["service"]["namespace"] == NAMESPACE
    assert spec["service"]["port"] in [p["port"] for p in service["spec"]["ports"]]


def test_certificates_of_make_certs_are_trusted_by_the_apiservice_for_the_service_name(
    rendered: dict[str, Docs],
) -> None:
    docs = rendered["local"]
    bundle = base64.b64decode(one(docs, "APIService", f"{VERSION}.{GROUP}")["spec"]["caBundle"])
    secret = one(docs, "Secret", "task-search-tls")
    assert (secret["type"], secret["metadata"]["namespace"]) == ("kubernetes.io/tls", NAMESPACE)
    serving = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    ca = x509.load_pem_x509_certificate(bundle)
    serving.verify_directly_issued_by(ca)
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"{SERVICE}.{NAMESPACE}.svc" in names.get_values_for_type(x509.DNSName)


@pytest.mark.parametrize("overlay", ["overlays/sqlite", "overlays/postgres"])
def test_cert_manager_issues_the_secret_the_server_mounts_and_injects_its_ca(
    rendered: dict[str, Docs], overlay: str
) -> None:
    docs = rendered[overlay]
    apiservice = one(docs, "APIService", f"{VERSION}.{GROUP}")
    injected = apiservice["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    namespace, name = injected.split("/")
    certificate = one(docs, "Certificate", name)["spec"]
    assert namespace == NAMESPACE and f"{SERVICE}.{NAMESPACE}.svc" in certificate["dnsNames"]
    volumes = one(docs, "Deployment", SERVICE)["spec"]["template"]["spec"]["volumes"]
    assert {"name": "tls", "secret": {"secretName": certificate["secretName"]}} in volumes
    issuer = one(docs, "Issuer", certificate["issuerRef"]["name"])["spec"]
    assert (
        one(docs, "Certificate", "task-search-ca")["spec"]["secretName"]
        == issuer["ca"]["secretName"]
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_service_port_the_probes_and_the_commands_agree_with_the_server(
    rendered: dict[str, Docs], overlay: str
) -> None:
    docs = rendered[overlay]
    server = container(docs, SERVICE)
    (service_port,) = one(docs, "Service", SERVICE)["spec"]["ports"]
    (port,) = server["ports"]
    assert service_port["targetPort"] == port["name"] == "https"
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert int(env["PORT"]) == port["containerPort"]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
        get = server[probe]["httpGet"]
        assert (get["path"], get["scheme"], get["port"]) == (path, "HTTPS", "https")
    assert server["command"] == procfile("web")
    assert container(docs, "task-controller")["command"] == procfile("controller")
    selector = one(docs, "Service", SERVICE)["spec"]["selector"]
    labels = one(docs, "Deployment", SERVICE)["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_unprivileged_and_outlast_the_watch_drain(
    rendered: dict[str, Docs], overlay: str
) -> None:
    docs = rendered[overlay]
    for name in (SERVICE, "task-controller"):
        pod = one(docs, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        context = pod["containers"][0]["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert pod["containers"][0]["resources"]["limits"]
    pod = one(docs, "Deployment", SERVICE)["spec"]["template"]["spec"]
    stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    drain = 20  # gunicorn's graceful_timeout in proxy/gunicorn.conf.py
    assert pod["terminationGracePeriodSeconds"] > drain + int(stop[-1])
    assert pod["affinity"]["podAntiAffinity"]
    assert one(docs, "PodDisruptionBudget", SERVICE)["spec"]["maxUnavailable"] == 1


def test_sqlite_runs_one_replica_on_a_volume_and_postgres_three_on_the_database(
    rendered: dict[str, Docs],
) -> None:
    sqlite = one(rendered["overlays/sqlite"], "Deployment", SERVICE)["spec"]
    assert (sqlite["replicas"], sqlite["strategy"]["type"]) == (1, "Recreate")
    volumes = sqlite["template"]["spec"]["volumes"]
    assert {"name": "store", "persistentVolumeClaim": {"claimName": "task-search-store"}} in volumes
    postgres_docs = rendered["overlays/postgres"]
    postgres = one(postgres_docs, "Deployment", SERVICE)["spec"]
    assert postgres["replicas"] >= 2 and postgres["strategy"]["type"] == "RollingUpdate"
    env = {e["name"]: e for e in postgres["template"]["spec"]["containers"][0]["env"]}
    source = env["APISERVER_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert source == {"name": "task-search-database", "key": "url"}
    assert not [d for d in postgres_docs if d["kind"] == "PersistentVolumeClaim"]
    assert "store" not in [v["name"] for v in postgres["template"]["spec"]["volumes"]]


def test_the_controller_runs_two_replicas_that_elect_a_leader(rendered: dict[str, Docs]) -> None:
    docs = rendered["base"]
    deployment = one(docs, "Deployment", "task-controller")
    spec = deployment["spec"]
    assert (spec["replicas"], spec["strategy"]["type"]) == (2, "RollingUpdate")
    controller = container(docs, "task-controller")
    env = {e["name"]: e.get("value") for e in controller["env"]}
    (port,) = controller["ports"]
    assert env["APISERVER_CONTROLLER_PROBE_ADDRESS"] == f":{port['containerPort']}"
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = controller[probe]["httpGet"]
        assert (get["path"], get["port"]) == (path, port["name"])
    # the lease lives in the pod's own namespace (read from its service account)
    role = one(docs, "Role", "task-controller:leader-election")
    assert role["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    (rule,) = role["rules"]
    assert (rule["apiGroups"], rule["resources"]) == (["coordination.k8s.io"], ["leases"])
    assert {"get", "create", "patch"} <= set(rule["verbs"])
    binding = one(docs, "RoleBinding", "task-controller:leader-election")
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "task-controller", "namespace": NAMESPACE}
    ]


def test_a8_rbac_binds_what_the_server_and_the_controller_need(
    rendered: dict[str, Docs],
) -> None:
    docs = rendered["base"]
    server = {"kind": "ServiceAccount", "name": SERVICE, "namespace": NAMESPACE}
    controller = {"kind": "ServiceAccount", "name": "task-controller", "namespace": NAMESPACE}

    def bound(kind: str, role: str) -> list[dict[str, Any]]:
        return [
            subject
            for d in docs
            if d["kind"] == kind and d["roleRef"]["name"] == role
            for subject in d["subjects"]
        ]

    assert server in bound("ClusterRoleBinding", "system:auth-delegator")
    reader = one(docs, "RoleBinding", f"{SERVICE}:extension-apiserver-authentication-reader")
    assert reader["metadata"]["namespace"] == "kube-system"
    assert (reader["roleRef"]["kind"], reader["subjects"]) == ("Role", [server])

    def allowed(role: str) -> set[tuple[str, str, str]]:
        rules = one(docs, "ClusterRole", role)["rules"]
        return {
            (group, resource, verb)
            for r in rules
            for group in r["apiGroups"]
            for resource in r["resources"]
            for verb in r["verbs"]
        }

    assert server in bound("ClusterRoleBinding", f"{SERVICE}:reader")
    assert {
        ("example.example.com", "tasks", "list"),
        ("example.example.com", "tasks", "watch"),
        ("", "events", "list"),
        ("", "events", "watch"),
        ("", "namespaces", "list"),  # NamespaceLifecycle
        ("", "namespaces", "watch"),
        ("", "namespaces", "get"),  # the live look on a miss
        ("admissionregistration.k8s.io", "validatingadmissionpolicies", "watch"),
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings", "watch"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "watch"),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "watch"),
    } <= allowed(f"{SERVICE}:reader")
    assert controller in bound("ClusterRoleBinding", "task-controller")
    assert {
        ("example.example.com", "tasks", "watch"),
        ("example.example.com", "tasks", "patch"),
        ("", "events", "create"),
        ("", "events", "list"),
    } <= allowed("task-controller")
    aggregated = {
        label.rsplit("-", 1)[1]
        for d in docs
        if d["kind"] == "ClusterRole"
        for label in d["metadata"].get("labels", {})
        if label.startswith("rbac.authorization.k8s.io/aggregate-to-")
    }
    assert aggregated == {"view", "edit", "admin"}
    assert (GROUP, "customtasks", "list") in allowed("task-search:view")
    assert (GROUP, "customtasks", "create") in allowed("task-search:edit")


def test_the_image_runs_the_procfiles_web_process_as_an_unprivileged_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    (cmd,) = re.findall(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert json.loads(cmd) == procfile("web")
    assert re.search(r"^USER 10001", dockerfile, re.M)
    final_stage = dockerfile.rsplit("FROM ", 1)[1]
    assert "pip install" not in final_stage and "apt-get" not in final_stage
    patterns = [
        line for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] not in "#"
    ]
    assert patterns[0] == "*"  # only what is named after it reaches the build


# the server as the Deployment runs it


@pytest.fixture
def deployed(rendered: dict[str, Docs], tmp_path: Path) -> Iterator[tuple[int, Path, Any]]:
    """The server with the Deployment's command and environment, its mounts remapped under
    ``tmp_path``, in-cluster against the fake cluster; yields (port, certs dir, front-proxy CA)."""
    certs = tmp_path / "local"
    clustercerts.write(certs)
    account = tmp_path / "serviceaccount"
    data = tmp_path / "data"
    data.mkdir()
    front_proxy = new_ca("front-proxy-ca")
    with FakeCluster() as cluster:
        account.mkdir()
        (account / "token").write_text(cluster.token)
        shutil.copy(cluster.ca_file, account / "ca.crt")
        cluster.configmap = authentication_data(
            new_ca("client-ca").cert_pem, front_proxy.cert_pem, ["front-proxy-client"]
        )
        server = container(rendered["local"], SERVICE)
        port = free_port()
        mounts = {"/tls": str(certs), "/data": str(data)}
        env = {e["name"]: e["value"] for e in server["env"]}
        env = {k: _remap(v, mounts) for k, v in env.items()}
        env.update(
            PORT=str(port),
            APISERVER_BIND_ADDRESS="127.0.0.1",  # the pod's 0.0.0.0, kept on loopback here
            KUBERNETES_SERVICE_HOST="127.0.0.1",
            KUBERNETES_SERVICE_PORT=cluster.url.rsplit(":", 1)[1],
            APISERVER_SERVICE_ACCOUNT_DIR=str(account),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            HOME=str(tmp_path),
        )
        log = (tmp_path / "server.log").open("wb")
        process = subprocess.Popen(
            server["command"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait(port, certs / "ca.crt", process, tmp_path / "server.log")
            yield port, certs, (front_proxy, cluster)
        finally:
            process.terminate()
            process.wait(30)
            log.close()


def _remap(value: str, mounts: dict[str, str]) -> str:
    for mount, local in mounts.items():
        if value.startswith(mount + "/"):
            return local + value[len(mount) :]
    return value


def _request(
    port: int, ca_file: Path, path: str, headers: dict[str, str], cert: Any = None
) -> tuple[int, dict[str, str], bytes]:
    """One HTTPS request as kube-apiserver makes it: the server's certificate verified against
    the caBundle for the Service's DNS name, optionally a client certificate."""
    context = ssl.create_default_context(cafile=str(ca_file))
    if cert is not None:
        context.load_cert_chain(*cert)
    hostname = f"{SERVICE}.{NAMESPACE}.svc"
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        lines = [f"GET {path} HTTP/1.1", f"Host: {hostname}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        reply = b""
        while chunk := tls.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    parsed = {k.lower(): v for k, v in (line.split(": ", 1) for line in header_lines)}
    if parsed.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return int(status_line.split()[1]), parsed, body


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        length = int(size, 16)
        if not length:
            break
        out += rest[:length]
        body = rest[length + 2 :]
    return out


def _wait(port: int, ca_file: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if _request(port, ca_file, "/readyz", {})[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"not ready in 30 s:\n{log.read_text()}")


def test_run_as_deployed_it_passes_the_aggregators_availability_check_and_discovery(
    deployed: tuple[int, Path, Any], tmp_path: Path
) -> None:
    port, certs, (front_proxy_ca, cluster) = deployed
    proxy = issue(front_proxy_ca, "front-proxy-client", client=True)
    (tmp_path / "fp.crt").write_bytes(proxy.cert_pem)
    (tmp_path / "fp.key").write_bytes(proxy.key_pem)
    aggregator = {"X-Remote-User": "system:kube-aggregator", "X-Remote-Group": "system:masters"}
    cert = (str(tmp_path / "fp.crt"), str(tmp_path / "fp.key"))
    status, _, body = _request(port, certs / "ca.crt", f"/apis/{GROUP}/{VERSION}", aggregator, cert)
    assert status == 200, body
    assert orjson.loads(body)["groupVersion"] == f"{GROUP}/{VERSION}"
    accept = (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
        "application/json"
    )
    status, headers, body = _request(
        port, certs / "ca.crt", "/apis", {**aggregator, "Accept": accept}, cert
    )
    assert status == 200
    assert headers["content-type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    groups = [group["metadata"]["name"] for group in orjson.loads(body)["items"]]
    assert groups == [GROUP]
    # The configuration came from the service account: the fake saw its token.
    reads = [r for r in cluster.recorded() if "configmaps" in r.path]
    assert reads and reads[0].headers["authorization"] == f"Bearer {cluster.token}"
