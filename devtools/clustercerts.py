"""``make certs``: certificates for a cluster without cert-manager, as a kustomize overlay.

It writes ``k8s/manifests/local/`` (kept out of git): a CA, a serving certificate for the
Service (SAN ``task-search-api.task-search.svc``, the name kube-apiserver verifies), and a
kustomization that adds them as the Secret ``task-search-tls`` and fills the APIService's
``caBundle`` with the CA. ``kubectl apply -k k8s/manifests/local`` then installs everything.
A second run keeps the CA and the certificate while they have more than 30 days left.
"""

from __future__ import annotations

import argparse
import base64
import datetime
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from devtools.certs import Issued, issue, new_ca

SERVICE, NAMESPACE = "task-search-api", "task-search"
APISERVICE = "v1.search.task.example.example.com"
DEFAULT_DIRECTORY = Path("k8s/manifests/local")
RENEW_BEFORE = datetime.timedelta(days=30)


def dns_names(service: str = SERVICE, namespace: str = NAMESPACE) -> list[str]:
    """The names the aggregator may verify the serving certificate against."""
    return [f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def write(directory: Path, *, postgres: bool = False) -> None:
    """The overlay in ``directory`` (beside ``k8s/manifests/base``), on SQLite or PostgreSQL."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _load(directory / "ca.crt", directory / "ca.key")
    serving = _load(directory / "tls.crt", directory / "tls.key")
    if ca is None or serving is None:
        ca = new_ca("task-search-ca")
        serving = issue(ca, dns_names()[0], dns_names=dns_names(), server=True)
        _save(directory / "ca", ca)
        _save(directory / "tls", serving)
    bundle = base64.b64encode(ca.cert_pem).decode()
    components = "components:\n  - ../components/postgres\n" if postgres else ""
    (directory / "kustomization.yaml").write_text(
        f"""# Written by `make certs`: the base with a CA and a serving certificate of our own.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base
{components}secretGenerator:
  - name: task-search-tls
    namespace: {NAMESPACE}
    type: kubernetes.io/tls
    files:
      - tls.crt
      - tls.key
    options:
      disableNameSuffixHash: true
patches:
  - target:
      kind: APIService
      name: {APISERVICE}
    patch: |-
      - op: add
        path: /spec/caBundle
        value: {bundle}
"""
    )


def _load(cert_file: Path, key_file: Path) -> Issued | None:
    """A certificate kept from an earlier run, unless missing or close to expiry."""
    if not (cert_file.exists() and key_file.exists()):
        return None
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    if left < RENEW_BEFORE:
        return None
    key = load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey), f"{key_file}: not an EC key of ours"
    return Issued(cert, key)


def _save(stem: Path, issued: Issued) -> None:
    stem.with_suffix(".crt").write_bytes(issued.cert_pem)
    key = stem.with_suffix(".key")
    key.write_bytes(issued.key_pem)
    key.chmod(0o600)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.clustercerts", description=__doc__)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, three replicas")
    parser.add_argument("--directory", type=Path, default=DEFAULT_DIRECTORY)
    args = parser.parse_args(argv)
    write(args.directory, postgres=args.postgres)
    print(f"wrote {args.directory}/: apply it with  kubectl apply -k {args.directory}")


if __name__ == "__main__":
    main()
