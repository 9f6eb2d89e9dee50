"""``make run``'s set-up: a dev CA, serving and client certificates, and a kubeconfig.

Everything lands in ``.dev/``; files that already exist are reused, so a second run keeps
the same CA and kubeconfig.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from devtools.certs import Issued, issue, new_ca
from proxy.settings import Settings

CLUSTER = "task-apiserver-dev"
USER = "dev-admin"


def kubeconfig(server: str, ca_pem: bytes, client: Issued) -> str:
    """A kubeconfig that reaches ``server`` as the given client certificate."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CLUSTER,
                    "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
                }
            ],
            "users": [
                {
                    "name": USER,
                    "user": {
                        "client-certificate-data": b64(client.cert_pem),
                        "client-key-data": b64(client.key_pem),
                    },
                }
            ],
            "contexts": [
                {
                    "name": CLUSTER,
                    "context": {"cluster": CLUSTER, "user": USER, "namespace": "default"},
                }
            ],
            "current-context": CLUSTER,
        },
        sort_keys=False,
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def main() -> None:
    """Create what is missing under ``.dev/`` and say what is there."""
    settings = Settings.from_env()
    dev = Path(os.environ.get("APISERVER_DEV_DIR", ".dev"))
    dev.mkdir(parents=True, exist_ok=True)
    config = dev / "kubeconfig"
    if config.exists() and Path(settings.tls_cert_file).exists():
        print(f"reusing {dev}/ (CA, certificates, kubeconfig)")
        return
    ca = new_ca("task-apiserver-dev-ca")
    serving = issue(
        ca, "localhost", dns_names=["localhost"], ip_addresses=["127.0.0.1"], server=True
    )
    client = issue(ca, USER, organizations=["system:masters"], client=True)
    _write(dev / "ca.crt", ca.cert_pem)
    _write(dev / "ca.key", ca.key_pem, private=True)
    _write(Path(settings.tls_cert_file), serving.cert_pem)
    _write(Path(settings.tls_key_file), serving.key_pem, private=True)
    _write(dev / "client.crt", client.cert_pem)
    _write(dev / "client.key", client.key_pem, private=True)
    server = f"https://127.0.0.1:{settings.port}"
    _write(config, kubeconfig(server, ca.cert_pem, client).encode(), private=True)
    print(
        f"wrote {dev}/: CA, serving certificate for localhost and 127.0.0.1, "
        f"client certificate CN={USER} O=system:masters, kubeconfig for {server}"
    )


if __name__ == "__main__":
    main()
