"""Run the server as deployed, for the tests and the benchmarks alike.

The Procfile's ``web`` command (gunicorn) runs on a free loopback port with its settings in
environment variables and its own PKI, is ready when ``/readyz`` answers 200, and is stopped
with SIGTERM. One launcher, so what the tests check and what the bench measures is the same
process started the same way; the bench may swap the application and add gunicorn options
(command-line options override the config file).
"""

from __future__ import annotations

import http.client
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devtools.certs import Issued, issue, new_ca
from devtools.devenv import kubeconfig
from devtools.procfile import command

ROOT = Path(__file__).resolve().parents[1]
"""The repository root: where the Procfile is and where every server runs by default."""
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
        """Issue (once: callers in several threads share the files) a client certificate;
        returns (cert file, key file)."""
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
        cert_file, key_file = self.client(name, groups)
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), None)
        path = Path(cert_file).with_suffix(".kubeconfig")
        path.write_text(kubeconfig(server, self.ca.cert_pem, Issued(cert, key)))  # type: ignore[arg-type]
        return str(path)


def free_port() -> int:
    """A loopback port nothing listens on now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(directory: Path, pki: Pki, port: int, workers: int) -> dict[str, str]:
    """The settings of a server under ``directory``: its PKI, port, database and workers.

    This interpreter's directory leads ``PATH``, so ``gunicorn`` is the virtualenv's.
    """
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


def argv(app: str | None = None, options: Sequence[str] = (), root: Path = ROOT) -> list[str]:
    """The ``web`` command of ``root``'s Procfile, with ``app`` instead of its own and
    ``options`` added."""
    *launcher, own = shlex.split(command("web", root / "Procfile"))
    return [*launcher, *options, app or own]


@dataclass(frozen=True)
class Running:
    """A started server: its port, PKI, process and log."""

    port: int
    pki: Pki
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_web(
    directory: Path,
    *,
    pki: Pki | None = None,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
    app: str | None = None,
    options: Sequence[str] = (),
    root: Path = ROOT,
) -> Iterator[Running]:
    """Start :func:`argv` under ``directory`` (its own PKI unless given one) with ``env`` over
    :func:`environment`, logging to ``server.log``; yield it once ready; SIGTERM after, and
    kill it if it has not exited 30 s later. ``root`` is the source tree it runs from (the
    bench runs an older revision beside this one): its Procfile, its working directory."""
    pki = pki or Pki.create(directory / "pki")
    port = free_port()
    settings = {**environment(directory, pki, port, workers), **(env or {})}
    args = argv(app, options, root)
    args[0] = shutil.which(args[0], path=settings["PATH"]) or args[0]
    log_path = directory / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, cwd=root, env=settings, stdout=log, stderr=subprocess.STDOUT
        )
    running = Running(port, pki, process, log_path)
    try:
        _wait_ready(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(running: Running, timeout: float = 30.0) -> None:
    """Poll ``/readyz`` until 200; fail with the log if the process exits or time runs out."""
    context = ssl.create_default_context(cafile=running.pki.ca_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{running.log()}")
        if _readyz(running.port, context) == 200:
            return
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout}s:\n{running.log()}")


def _readyz(port: int, context: ssl.SSLContext) -> int | None:
    """``/readyz``'s status, or None while the server does not answer yet. No client
    certificate: the TLS settings only ask for one and health paths need none."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
