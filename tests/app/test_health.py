"""Health endpoints: /livez answers while the process runs, /readyz names the failing check."""

from __future__ import annotations

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
    lines = r.text.splitlines()
    assert lines[0] == "[+]ping ok"
    assert lines[1].startswith("[-]store failed: ")
    assert lines[-1] == "readyz check failed"
    listing = client.simulate_get("/apis/search.task.example.example.com/v1/clustertasks")
    assert (listing.status_code, listing.json["reason"]) == (503, "ServiceUnavailable")
    blocked.unlink()
    blocked.mkdir()
    assert client.simulate_get("/readyz").text == "ok"
