"""The dev environment that ``make run`` writes into ``.dev/``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from devtools import devenv


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
