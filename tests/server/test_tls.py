"""The real server under gunicorn: HTTPS only, TLS 1.2+, x509 users, health without auth."""

from __future__ import annotations

import runpy
import socket
import ssl
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from devtools.certs import new_ca
from tests.fakes.cluster import FakeCluster, authentication_data
from tests.support.servers import ROOT, Pki, Server, run_server

GV = "/apis/search.task.example.example.com/v1"


def test_health_paths_answer_anonymous_clients(server: Server) -> None:
    s = server.anonymous()
    for path in ("/healthz", "/livez", "/readyz"):
        r = s.get(server.url + path)
        assert (r.status_code, r.text) == (200, "ok"), path


def test_plain_http_is_not_served(server: Server) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url.replace("https", "http") + "/healthz", timeout=5)


def test_tls_1_2_clients_are_served(server: Server) -> None:
    context = ssl.create_default_context(cafile=server.pki.ca_file)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    host, port = server.url.removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port))) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.2"


def test_gunicorn_context_refuses_anything_older_than_tls_1_2(server: Server) -> None:
    config = runpy.run_path(str(ROOT / "proxy" / "gunicorn.conf.py"))
    files = SimpleNamespace(
        certfile=str(server.pki.directory / "serving.crt"),
        keyfile=str(server.pki.directory / "serving.key"),
    )
    context = config["ssl_context"](files, None)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_OPTIONAL
    assert config["cert_reqs"] == ssl.CERT_OPTIONAL
    assert config["worker_class"] == "proxy.worker.StatusWorker"  # gthread, see proxy.worker
    assert config["header_map"] == "drop"


def test_anonymous_requests_are_forbidden_with_a_status(server: Server) -> None:
    r = server.anonymous().get(server.url + GV)
    assert r.status_code == 403
    assert r.json()["reason"] == "Forbidden"
    assert r.json()["message"] == (
        f'forbidden: User "system:anonymous" cannot get path "{GV}": '
        "no cluster is configured to review access"
    )


def test_x509_user_outside_masters_is_forbidden_in_kube_wording(server: Server) -> None:
    r = server.session("alice", ("devs",)).get(server.url + GV + "/namespaces/ns1/customtasks")
    assert r.status_code == 403
    assert r.json()["message"] == (
        'customtasks.search.task.example.example.com is forbidden: User "alice" cannot list '
        'resource "customtasks" in API group "search.task.example.example.com" in the namespace '
        '"ns1": no cluster is configured to review access'
    )


def test_masters_client_certificate_is_authorized(server: Server) -> None:
    r = server.session().get(server.url + GV)
    assert r.status_code == 200
    assert r.json()["kind"] == "APIResourceList"


def test_certificate_from_another_ca_fails_the_handshake(server: Server) -> None:
    from devtools.certs import issue, new_ca

    other = new_ca("intruder-ca")
    leaf = issue(other, "admin", organizations=["system:masters"], client=True)
    cert, key = server.pki.directory / "intruder.crt", server.pki.directory / "intruder.key"
    cert.write_bytes(leaf.cert_pem)
    key.write_bytes(leaf.key_pem)
    s = server.anonymous()
    s.cert = (str(cert), str(key))
    with pytest.raises(requests.exceptions.SSLError):
        s.get(server.url + GV)


def test_the_server_also_runs_under_the_gevent_worker(tmp_path: Path) -> None:
    """gevent patches ssl in each worker: nothing the config file loads in the master may
    import requests or urllib3 first, or the worker's cluster calls (the authentication
    ConfigMap here) and then every handshake fail, as they once did."""
    pki = Pki.create(tmp_path / "pki")
    with FakeCluster() as cluster:
        cluster.configmap = authentication_data(pki.ca.cert_pem, new_ca("fp").cert_pem)
        env = {
            "GUNICORN_CMD_ARGS": "--worker-class gevent",
            "APISERVER_KUBECONFIG": str(cluster.kubeconfig(tmp_path)),
        }
        with run_server(tmp_path, pki=pki, workers=1, env=env) as gevent_server:
            with gevent_server.session() as session:  # closed: gevent drains open connections
                listed = session.get(f"{gevent_server.url}{GV}/clustertasks")
            assert listed.status_code == 200, listed.text
            assert "gevent" in gevent_server.log()
