"""Run the real server for tests, and talk to it with ``requests``.

:mod:`devtools.launch` starts it (the Procfile's ``web`` command, as the bench does); this
adds sessions presenting the tests' client certificates. The rest is re-exported so tests
keep one import.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

from devtools.launch import ROOT, Pki, Running, environment, free_port, run_web

__all__ = ["ROOT", "Pki", "Server", "environment", "free_port", "run_server", "shell_join"]


class Server(Running):
    """A running server and ways to talk to it."""

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


@contextmanager
def run_server(
    directory: Path,
    *,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
    pki: Pki | None = None,
) -> Iterator[Server]:
    """Start gunicorn as the Procfile says; stop it (SIGTERM) afterwards."""
    with run_web(directory, pki=pki, workers=workers, env=env) as running:
        yield Server(running.port, running.pki, running.process, running.log_path)


def shell_join(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)
