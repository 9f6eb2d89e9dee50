"""k8s.client and k8s.reviews against ``responses`` (contract A2, A5, A7: the cluster calls).

``responses`` replaces the transport adapter, so every request's ``verify``, ``cert`` and
``timeout`` are visible in ``call.request.req_kwargs`` exactly as the Session would send them.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
import yaml
from responses import matchers

from devtools.certs import issue, new_ca
from k8s import reviews
from k8s.client import Cluster, ClusterError

SERVER = "https://127.0.0.1:6443"  # never contacted: responses answers every call


@pytest.fixture(autouse=True)
def no_cluster_in_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No in-cluster variables, no KUBECONFIG, an empty HOME; and a CA bundle that would break
    every call if the Session let the environment override its ``verify``."""
    for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "no-such-bundle.pem"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def write_kubeconfig(path: Path, user: dict[str, Any], cluster: dict[str, Any]) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": SERVER, **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_bytes(new_ca("test-cluster-ca").cert_pem)
    return path


@pytest.fixture
def cluster(tmp_path: Path, ca_file: Path) -> Cluster:
    """A cluster from a kubeconfig with a bearer token."""
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", {"token": "secret-token"}, {"certificate-authority": str(ca_file)}
    )
    loaded = Cluster.from_environment(str(kubeconfig))
    assert loaded is not None
    return loaded


# -- configuration -------------------------------------------------------------------------------


def test_kubeconfig_with_token(
    cluster: Cluster, ca_file: Path, mocked: responses.RequestsMock
) -> None:
    mocked.get(
        f"{SERVER}/api/v1/namespaces",
        json={"kind": "NamespaceList", "items": []},
        match=[
            matchers.header_matcher(
                {"Authorization": "Bearer secret-token", "Accept": "application/json"}
            )
        ],
    )
    assert cluster.server == SERVER
    assert cluster.get("/api/v1/namespaces") == {"kind": "NamespaceList", "items": []}
    sent = mocked.calls[0].request.req_kwargs  # type: ignore[attr-defined]
    assert sent["verify"] == str(ca_file)  # not REQUESTS_CA_BUNDLE
    assert sent["cert"] is None
    assert sent["timeout"] == (5.0, 10.0)
    assert not sent["proxies"]  # not HTTPS_PROXY either


def test_kubeconfig_with_client_certificate_data(
    tmp_path: Path, mocked: responses.RequestsMock
) -> None:
    ca = new_ca("test-cluster-ca")
    leaf = issue(ca, "dev-admin", organizations=["system:masters"], client=True)

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig",
        {"client-certificate-data": b64(leaf.cert_pem), "client-key-data": b64(leaf.key_pem)},
        {"certificate-authority-data": b64(ca.cert_pem)},
    )
    cluster = Cluster.from_environment(str(kubeconfig))
    assert cluster is not None
    mocked.get(f"{SERVER}/version", json={"major": "1"})
    assert cluster.get("/version") == {"major": "1"}
    request = mocked.calls[0].request
    assert "Authorization" not in request.headers
    sent = request.req_kwargs  # type: ignore[attr-defined]
    cert_file, key_file = sent["cert"]
    assert Path(cert_file).read_bytes() == leaf.cert_pem
    assert Path(key_file).read_bytes() == leaf.key_pem
    assert Path(sent["verify"]).read_bytes() == ca.cert_pem


def test_kubeconfig_with_client_certificate_files(
    tmp_path: Path, ca_file: Path, mocked: responses.RequestsMock
) -> None:
    leaf = issue(new_ca("test-cluster-ca"), "dev-admin", client=True)
    (tmp_path / "client.crt").write_bytes(leaf.cert_pem)
    (tmp_path / "client.key").write_bytes(leaf.key_pem)
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig",
        {"client-certificate": "client.crt", "client-key": "client.key"},  # relative to the file
        {"certificate-authority": str(ca_file)},
    )
    cluster = Cluster.from_environment(str(kubeconfig))
    assert cluster is not None
    mocked.get(f"{SERVER}/version", json={})
    cluster.get("/version")
    sent = mocked.calls[0].request.req_kwargs  # type: ignore[attr-defined]
    assert sent["cert"] == (str(tmp_path / "client.crt"), str(tmp_path / "client.key"))


def test_authorization_is_computed_per_request(
    tmp_path: Path, mocked: responses.RequestsMock
) -> None:
    """An exec plugin whose credential has expired runs again before each request."""
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json, pathlib, sys\n"
        f"counter = pathlib.Path({str(tmp_path / 'count')!r})\n"
        "n = int(counter.read_text()) + 1 if counter.exists() else 1\n"
        "counter.write_text(str(n))\n"
        "json.dump({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential',\n"
        "           'status': {'token': f'exec-{n}',\n"
        "                      'expirationTimestamp': '2000-01-01T00:00:00Z'}}, sys.stdout)\n"
    )
    exec_config = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": sys.executable,
        "args": [str(plugin)],
        "interactiveMode": "Never",
    }
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"exec": exec_config}, {})
    cluster = Cluster.from_environment(str(kubeconfig))
    assert cluster is not None
    mocked.get(f"{SERVER}/version", json={})
    cluster.get("/version")
    cluster.get("/version")
    tokens = [call.request.headers["Authorization"] for call in mocked.calls]
    assert tokens[0].startswith("Bearer exec-")
    assert tokens[0] != tokens[1]


def service_account(directory: Path, ca_file: Path, token: str | None = "t") -> str:
    """A directory laid out as the kubelet mounts a service account (token, ca.crt)."""
    directory.mkdir()
    shutil.copy(ca_file, directory / "ca.crt")
    if token is not None:
        (directory / "token").write_text(token)
    return str(directory)


def test_in_cluster_rereads_a_rotated_token(
    tmp_path: Path, ca_file: Path, monkeypatch: pytest.MonkeyPatch, mocked: responses.RequestsMock
) -> None:
    account = service_account(tmp_path / "sa", ca_file, "first-token\n")
    token = Path(account) / "token"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    cluster = Cluster.from_environment(service_account=account)
    assert cluster is not None
    assert cluster.server == SERVER
    mocked.get(f"{SERVER}/version", json={})

    cluster.get("/version")
    rotated = Path(account) / "token.new"  # the kubelet swaps in a new file atomically
    rotated.write_text("second-token")
    os.replace(rotated, token)
    cluster.get("/version")
    token.write_text("third-token!")  # rewritten in place: same inode, new size and mtime
    cluster.get("/version")

    headers = [call.request.headers["Authorization"] for call in mocked.calls]
    assert headers == ["Bearer first-token", "Bearer second-token", "Bearer third-token!"]
    sent = mocked.calls[0].request.req_kwargs  # type: ignore[attr-defined]
    assert sent["verify"] == f"{account}/ca.crt"


def test_in_cluster_wins_over_a_kubeconfig(
    tmp_path: Path, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = service_account(tmp_path / "sa", ca_file)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.2")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"token": "x"}, {})
    cluster = Cluster.from_environment(str(kubeconfig), service_account=account)
    assert cluster is not None
    assert cluster.server == "https://127.0.0.2:443"


def test_in_cluster_without_a_token_file_is_an_error(
    tmp_path: Path, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = service_account(tmp_path / "sa", ca_file, token=None)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    with pytest.raises(ClusterError, match="in-cluster configuration") as caught:
        Cluster.from_environment(service_account=account)
    assert caught.value.status is None


def test_no_configuration_means_no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Cluster.from_environment() is None
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert Cluster.from_environment() is None


def test_kubeconfig_variable_and_home_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home_config = Path.home() / ".kube" / "config"
    home_config.parent.mkdir()
    write_kubeconfig(home_config, {"token": "home"}, {})
    cluster = Cluster.from_environment()
    assert cluster is not None
    assert cluster.server == SERVER

    other = tmp_path / "other"
    config = yaml.safe_load(home_config.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:7443"
    other.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}{os.pathsep}{other}")
    cluster = Cluster.from_environment()
    assert cluster is not None
    assert cluster.server == "https://127.0.0.1:7443"


def test_unusable_kubeconfig_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="no such file"):
        Cluster.from_environment(str(tmp_path / "missing"))
    broken = tmp_path / "broken"
    broken.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": []}))
    with pytest.raises(ClusterError, match=f"kubeconfig {broken}") as caught:
        Cluster.from_environment(str(broken))
    assert caught.value.status is None


def test_timeouts(tmp_path: Path, ca_file: Path, mocked: responses.RequestsMock) -> None:
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", {"token": "t"}, {"certificate-authority": str(ca_file)}
    )
    cluster = Cluster.from_environment(str(kubeconfig), timeout=2.5)
    assert cluster is not None
    mocked.get(f"{SERVER}/version", json={})
    cluster.get("/version")
    cluster.get("/version", timeout=30)
    sent = [call.request.req_kwargs["timeout"] for call in mocked.calls]  # type: ignore[attr-defined]
    assert sent == [(2.5, 2.5), (5.0, 30)]  # connect never longer than 5 s or the read


# -- JSON in and out, errors ---------------------------------------------------------------------


def test_json_in_and_out(cluster: Cluster, mocked: responses.RequestsMock) -> None:
    mocked.get(
        f"{SERVER}/api/v1/namespaces/default/events",
        json={"kind": "EventList", "items": [{"message": "héllo"}]},
        match=[matchers.query_param_matcher({"labelSelector": "a=b", "limit": "5"})],
    )
    mocked.post(
        f"{SERVER}/api/v1/namespaces",
        json={"kind": "Namespace", "metadata": {"name": "n", "uid": "u"}},
        status=201,
        match=[
            matchers.json_params_matcher({"kind": "Namespace", "metadata": {"name": "n"}}),
            matchers.header_matcher({"Content-Type": "application/json"}),
        ],
    )
    listed = cluster.get(
        "/api/v1/namespaces/default/events", {"labelSelector": "a=b", "limit": "5"}
    )
    assert listed["items"] == [{"message": "héllo"}]
    created = cluster.post("/api/v1/namespaces", {"kind": "Namespace", "metadata": {"name": "n"}})
    assert created["metadata"]["uid"] == "u"


def test_every_call_names_itself_and_asks_for_json(
    cluster: Cluster, mocked: responses.RequestsMock
) -> None:
    """The headers kube's audit log and request metrics read; a merge patch says so; nothing
    from the environment (``REQUESTS_CA_BUNDLE`` is set to a missing file by the fixture)."""
    sent = {"Accept": "application/json", "User-Agent": "task-search (python-requests)"}
    mocked.patch(
        f"{SERVER}/api/v1/namespaces/n",
        json={"kind": "Namespace"},
        match=[
            matchers.header_matcher(
                {**sent, "Content-Type": "application/merge-patch+json", "Content-Length": "20"}
            )
        ],
    )
    mocked.get(
        f"{SERVER}/api/v1/namespaces",
        json={"kind": "NamespaceList"},
        match=[matchers.query_param_matcher({"labelSelector": "a in (x,y)", "limit": "5"})],
    )
    assert cluster.patch("/api/v1/namespaces/n", {"metadata": {"a": 1}})
    listed = cluster.get("/api/v1/namespaces", {"labelSelector": "a in (x,y)", "limit": "5"})
    assert listed == {"kind": "NamespaceList"}
    request = mocked.calls[1].request
    assert {name: request.headers[name] for name in sent} == sent
    assert "Cookie" not in request.headers and "Content-Type" not in request.headers


def kube_status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@pytest.mark.parametrize(
    ("code", "reason", "message"),
    [
        (403, "Forbidden", 'subjectaccessreviews.authorization.k8s.io is forbidden: User "x"'),
        (404, "NotFound", "the server could not find the requested resource"),
        (500, "InternalError", "Internal error occurred: boom"),
    ],
)
def test_error_status_becomes_cluster_error(
    cluster: Cluster, mocked: responses.RequestsMock, code: int, reason: str, message: str
) -> None:
    body = kube_status(code, reason, message)
    mocked.post(f"{SERVER}{reviews.SUBJECT_ACCESS_REVIEWS}", json=body, status=code)
    with pytest.raises(ClusterError) as caught:
        cluster.post(reviews.SUBJECT_ACCESS_REVIEWS, {"spec": {}})
    error = caught.value
    assert error.status == code
    assert error.body == body
    assert error.message == f"POST {reviews.SUBJECT_ACCESS_REVIEWS}: {code} {message}"
    assert str(error) == error.message


def test_non_json_error_keeps_the_text(cluster: Cluster, mocked: responses.RequestsMock) -> None:
    mocked.get(f"{SERVER}/version", body="<html>\n<b>Bad gateway</b>\n</html>", status=502)
    with pytest.raises(ClusterError) as caught:
        cluster.get("/version")
    assert caught.value.status == 502
    assert caught.value.body is None
    assert caught.value.message == "GET /version: 502 <html> <b>Bad gateway</b> </html>"


def test_success_that_is_not_an_object_is_an_error(
    cluster: Cluster, mocked: responses.RequestsMock
) -> None:
    mocked.get(f"{SERVER}/version", body="not json")
    with pytest.raises(ClusterError, match=r"GET /version: 200 answer is not a JSON object"):
        cluster.get("/version")


@pytest.mark.parametrize(
    "failure", [requests.ConnectionError("connection refused"), requests.Timeout("read timed out")]
)
def test_unreachable_has_no_status(
    cluster: Cluster, mocked: responses.RequestsMock, failure: Exception
) -> None:
    mocked.post(f"{SERVER}{reviews.TOKEN_REVIEWS}", body=failure)
    with pytest.raises(ClusterError) as caught:
        reviews.token_review(cluster, "t")
    assert caught.value.status is None
    assert caught.value.body is None
    assert caught.value.message.startswith(f"POST {reviews.TOKEN_REVIEWS}: ")
    assert str(failure) in caught.value.message


def test_refused_connection_for_real() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = Cluster(f"https://127.0.0.1:{port}", timeout=2)
    with pytest.raises(ClusterError, match=r"^GET /version: ") as caught:
        cluster.get("/version")
    assert caught.value.status is None
    cluster.close()


# -- reviews and the authentication ConfigMap ----------------------------------------------------


def test_a2_authentication_configmap(cluster: Cluster, mocked: responses.RequestsMock) -> None:
    data = {"client-ca-file": "PEM", "requestheader-allowed-names": '["front-proxy-client"]'}
    mocked.get(
        f"{SERVER}{reviews.AUTHENTICATION_CONFIGMAP}",
        json={
            "kind": "ConfigMap",
            "metadata": {"name": "extension-apiserver-authentication"},
            "data": data,
        },
    )
    assert reviews.authentication_configmap(cluster) == data


def test_a2_authentication_configmap_without_data_or_missing(
    cluster: Cluster, mocked: responses.RequestsMock
) -> None:
    url = f"{SERVER}{reviews.AUTHENTICATION_CONFIGMAP}"
    mocked.get(url, json={"kind": "ConfigMap", "metadata": {}})
    assert reviews.authentication_configmap(cluster) == {}
    mocked.replace(responses.GET, url, json=kube_status(404, "NotFound", "not found"), status=404)
    assert reviews.authentication_configmap(cluster) == {}


def test_a2_authentication_configmap_forbidden_raises(
    cluster: Cluster, mocked: responses.RequestsMock
) -> None:
    mocked.get(
        f"{SERVER}{reviews.AUTHENTICATION_CONFIGMAP}",
        json=kube_status(403, "Forbidden", "forbidden"),
        status=403,
    )
    with pytest.raises(ClusterError) as caught:
        reviews.authentication_configmap(cluster)
    assert caught.value.status == 403


def test_a5_token_review(cluster: Cluster, mocked: responses.RequestsMock) -> None:
    status = {"authenticated": True, "user": {"username": "system:serviceaccount:m:p"}}
    mocked.post(
        f"{SERVER}{reviews.TOKEN_REVIEWS}",
        json={"kind": "TokenReview", "status": status},
        status=201,
        match=[
            matchers.json_params_matcher(
                {
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "spec": {"token": "abc", "audiences": ["api"]},
                }
            ),
            matchers.request_kwargs_matcher({"timeout": (3.0, 3.0)}),
        ],
    )
    assert reviews.token_review(cluster, "abc", ["api"], timeout=3.0) == status


def test_a5_token_review_without_audiences(
    cluster: Cluster, mocked: responses.RequestsMock
) -> None:
    mocked.post(
        f"{SERVER}{reviews.TOKEN_REVIEWS}",
        json={"kind": "TokenReview", "status": {"user": {}}},
        status=201,
        match=[matchers.json_params_matcher({"spec": {"token": "abc"}}, strict_match=False)],
    )
    assert reviews.token_review(cluster, "abc") == {"user": {}}


def test_a7_subject_access_review(cluster: Cluster, mocked: responses.RequestsMock) -> None:
    spec = {
        "user": "alice",
        "groups": ["devs", "system:authenticated"],
        "resourceAttributes": {"verb": "list", "resource": "customtasks", "namespace": "default"},
    }
    mocked.post(
        f"{SERVER}{reviews.SUBJECT_ACCESS_REVIEWS}",
        json={"kind": "SubjectAccessReview", "spec": spec, "status": {"allowed": True}},
        status=201,
        match=[
            matchers.json_params_matcher(
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": spec,
                }
            )
        ],
    )
    assert reviews.subject_access_review(cluster, spec) == {"allowed": True}


def test_a7_review_without_status(cluster: Cluster, mocked: responses.RequestsMock) -> None:
    mocked.post(f"{SERVER}{reviews.SUBJECT_ACCESS_REVIEWS}", json={"kind": "SubjectAccessReview"})
    assert reviews.subject_access_review(cluster, {"user": "a"}) == {}
