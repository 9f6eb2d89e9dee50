"""Health endpoints and the dev environment that ``make run`` writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from falcon.testing import TestClient

from proxy import devenv
from proxy.app import create_app
from proxy.certs import new_ca
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
    lines = r.text.splitlines()
    assert lines[0] == "[+]ping ok"
    assert lines[1].startswith("[-]store failed: ")
    assert lines[-1] == "readyz check failed"
    listing = client.simulate_get("/apis/search.task.example.example.com/v1/clustertasks")
    assert (listing.status_code, listing.json["reason"]) == (503, "ServiceUnavailable")
    blocked.unlink()
    blocked.mkdir()
    assert client.simulate_get("/readyz").text == "ok"


def test_devenv_writes_certificates_and_kubeconfig_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("APISERVER_") or k == "PORT"]:
        monkeypatch.delenv(key)
    devenv.main()
    dev = tmp_path / ".dev"
    client = x509.load_pem_x509_certificate((dev / "client.crt").read_bytes())
    subject = {a.oid._name: a.value for a in client.subject}
    assert subject == {"commonName": "dev-admin", "organizationName": "system:masters"}
    serving = x509.load_pem_x509_certificate((dev / "serving.crt").read_bytes())
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    config = yaml.safe_load((dev / "kubeconfig").read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:8443"
    before = {p.name: p.read_bytes() for p in dev.iterdir()}
    devenv.main()
    assert {p.name: p.read_bytes() for p in dev.iterdir()} == before
    assert "reusing" in capsys.readouterr().out
