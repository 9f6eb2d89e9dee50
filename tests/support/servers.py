"""Run the real server for tests: gunicorn from the Procfile, on a free loopback port, TLS.

The process is started exactly as deployed (the Procfile's ``web`` command) with settings
in environment variables, and is ready when ``/readyz`` answers 200.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from devtools.certs import Issued, issue, new_ca
from devtools.devenv import kubeconfig
from devtools.procfile import command

ROOT = Path(__file__).resolve().parents[2]
_ISSUE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Pki:
    """A CA, the server's certificate and client certificates, written under ``directory``."""

    directory: Path
    ca: Issued

    @classmethod
    def create(cls, directory: Path) -> Pki:
        directory.mkdir(parents=True, exist_ok=True)
        ca = new_ca("test-ca")
        (directory / "ca.crt").write_bytes(ca.cert_pem)
        serving = issue(
            ca, "localhost", dns_names=["localhost"], ip_addresses=["127.0.0.1"], server=True
        )
        (directory / "serving.crt").write_bytes(serving.cert_pem)
        (directory / "serving.key").write_bytes(serving.key_pem)
        return cls(directory, ca)

    @property
    def ca_file(self) -> str:
        return str(self.directory / "ca.crt")

    def client(self, name: str, groups: tuple[str, ...] = ()) -> tuple[str, str]:
        """Issue (once) a client certificate; returns (cert file, key file)."""
        label = "-".join((name, *groups)).replace(":", "_")
        cert, key = self.directory / f"{label}.crt", self.directory / f"{label}.key"
        with _ISSUE_LOCK:
            if not cert.exists():
                issued = issue(self.ca, name, organizations=groups, client=True)
                key.write_bytes(issued.key_pem)
                cert.write_bytes(issued.cert_pem)
        return str(cert), str(key)

    def kubeconfig(self, server: str, name: str, groups: tuple[str, ...]) -> str:
        """Write a kubeconfig for ``name`` and return its path."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        cert_file, key_file = self.client(name, groups)
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), None)
        path = Path(cert_file).with_suffix(".kubeconfig")
        path.write_text(kubeconfig(server, self.ca.cert_pem, Issued(cert, key)))  # type: ignore[arg-type]
        return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running server and ways to talk to it."""

    url: str
    pki: Pki
    process: subprocess.Popen[bytes]
    log_path: Path

    def session(
        self, name: str = "admin", groups: tuple[str, ...] = ("system:masters",)
    ) -> requests.Session:
        """A requests session presenting a client certificate for ``name``."""
        s = self.anonymous()
        s.cert = self.pki.client(name, groups)
        return s

    def anonymous(self) -> requests.Session:
        """A session without a client certificate (environment CA bundles ignored)."""
        s = requests.Session()
        s.trust_env = False
        s.verify = self.pki.ca_file
        return s

    def kubeconfig(self, name: str = "admin", groups: tuple[str, ...] = ("system:masters",)) -> str:
        return self.pki.kubeconfig(self.url, name, groups)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def environment(directory: Path, pki: Pki, port: int, workers: int) -> dict[str, str]:
    """The settings of a server under ``directory``: its PKI, port, database and workers."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PORT": str(port),
        "APISERVER_BIND_ADDRESS": "127.0.0.1",
        "APISERVER_TLS_CERT_FILE": str(pki.directory / "serving.crt"),
        "APISERVER_TLS_KEY_FILE": str(pki.directory / "serving.key"),
        "APISERVER_CLIENT_CA_FILE": pki.ca_file,
        "APISERVER_SQLITE_PATH": str(directory / "store.db"),
        "APISERVER_WORKERS": str(workers),
        "APISERVER_WATCH_BOOKMARK_SECONDS": "1",
    }


@contextmanager
def run_server(
    directory: Path,
    *,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
    pki: Pki | None = None,
) -> Iterator[Server]:
    """Start gunicorn as the Procfile says; stop it (SIGTERM) afterwards."""
    pki = pki or Pki.create(directory / "pki")
    port = free_port()
    environ = {**environment(directory, pki, port, workers), **(env or {})}
    log_path = directory / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["sh", "-c", "exec " + command("web", ROOT / "Procfile")],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"https://127.0.0.1:{port}", pki, process, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    session = server.anonymous()
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if session.get(server.url + "/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout}s:\n{server.log()}")


def shell_join(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)
