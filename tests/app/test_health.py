"""Health endpoints as kube's healthz handler answers them (k8s.io/apiserver, server/healthz):
``ok``; every check's line with ``?verbose`` or when one fails ("[-]store failed: reason
withheld", the reason in the log, "readyz check failed"); ``?exclude=``; one check alone at
``/readyz/<name>`` ("internal server error: <reason>"); ``shutdown`` failing first during a
graceful shutdown."""

from __future__ import annotations

import threading
from pathlib import Path

from falcon.testing import TestClient

from devtools.certs import new_ca
from proxy.app import create_app
from proxy.settings import Settings
from tests.conftest import AllowAll


def test_readyz_names_the_failing_store_check_until_the_store_opens(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where a directory should be")
    ca = tmp_path / "ca.crt"
    ca.write_bytes(new_ca("test-ca").cert_pem)
    settings = Settings.from_env(
        {"APISERVER_SQLITE_PATH": str(blocked / "store.db"), "APISERVER_CLIENT_CA_FILE": str(ca)}
    )
    client = TestClient(create_app(settings, authorizer=AllowAll()))
    assert client.simulate_get("/livez").text == "ok"
    r = client.simulate_get("/readyz")
    assert r.status_code == 500
    assert r.text.splitlines() == [
        "[+]ping ok",
        "[-]store failed: reason withheld",
        "[+]authentication ok",
        "[+]admission ok",
        "[+]shutdown ok",
        "readyz check failed",
    ]
    alone = client.simulate_get("/readyz/store")
    assert alone.status_code == 500
    assert alone.text.startswith("internal server error: ") and "store.db" not in r.text
    listing = client.simulate_get("/apis/search.task.example.example.com/v1/clustertasks")
    assert (listing.status_code, listing.json["reason"]) == (503, "ServiceUnavailable")
    blocked.unlink()
    blocked.mkdir()
    assert client.simulate_get("/readyz").text == "ok"


def test_verbose_exclude_one_check_and_shutdown(tmp_path: Path) -> None:
    stop = threading.Event()
    ca = tmp_path / "ca.crt"
    ca.write_bytes(new_ca("test-ca").cert_pem)
    settings = Settings.from_env(
        {"APISERVER_SQLITE_PATH": str(tmp_path / "store.db"), "APISERVER_CLIENT_CA_FILE": str(ca)}
    )
    client = TestClient(create_app(settings, authorizer=AllowAll(), stop=stop))
    assert client.simulate_get("/readyz").text == "ok"
    verbose = client.simulate_get("/readyz", params={"verbose": ""})
    assert verbose.text == (
        "[+]ping ok\n[+]store ok\n[+]authentication ok\n[+]admission ok\n[+]shutdown ok\n"
        "readyz check passed\n"
    )
    excluded = client.simulate_get("/readyz?verbose&exclude=store&exclude=nothing")
    assert "[+]store excluded: ok" in excluded.text.splitlines()
    assert 'warn: some health checks cannot be excluded: no matches for "nothing"' in (
        excluded.text.splitlines()
    )
    assert client.simulate_get("/readyz/store").text == "ok"
    assert client.simulate_get("/livez/ping").text == "ok"
    assert client.simulate_get("/readyz/nothing").status_code == 404
    stop.set()  # a graceful shutdown began: not ready, still alive
    assert client.simulate_get("/readyz").status_code == 500
    assert client.simulate_get("/readyz/shutdown").text == (
        "internal server error: process is shutting down\n"
    )
    assert client.simulate_get("/readyz", params={"exclude": "shutdown"}).text == "ok"
    assert client.simulate_get("/livez").text == "ok"
