"""A throwaway PostgreSQL server for tests: started once per test session, removed afterwards.

The server listens on 127.0.0.1 (a free port) and on a unix socket in its own temporary
directory, trusts local connections and skips fsync. ``initdb`` refuses to run as root, so as
root the server runs as the ``postgres`` user. Missing binaries are an error, never a skip.

Test modules import the fixtures they use::

    from tests.support.postgres import postgres_database_fixture, postgres_url_fixture  # noqa: F401

(registered under the names ``postgres_url`` and ``postgres_database``).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

SERVER_USER = "postgres"
_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
}
_INITDB_FLAGS = ("-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
_databases = itertools.count(1)


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the server would not start."""


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise PostgresUnavailable(
            f"{name!r} is not on PATH: the PostgreSQL tests need the PostgreSQL 15 server "
            "binaries (initdb, pg_ctl), e.g. /usr/lib/postgresql/15/bin on PATH"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run(command: list[str], as_user: str | None) -> None:
    """Run a server command (as ``as_user`` when given); its output goes into the error."""
    if as_user is not None:
        command = ["runuser", "-u", as_user, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a fresh PostgreSQL server; yield its URL (database ``postgres``); remove it."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    as_user = SERVER_USER if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="pgtest-"))
    try:
        data, sockets = root / "data", root / "sock"
        sockets.mkdir()
        if as_user is not None:
            account = pwd.getpwnam(as_user)
            for path in (root, sockets):
                os.chown(path, account.pw_uid, account.pw_gid)
        _run([initdb, "-D", str(data), *_INITDB_FLAGS], as_user)
        port = _free_port()
        options = " ".join(f"-c {key}={value}" for key, value in _SETTINGS.items())
        options += f" -p {port} -k {sockets}"
        server_log = root / "server.log"
        start = ["start", "-w", "-t", "60", "-D", str(data), "-l", str(server_log), "-o", options]
        try:
            _run([pg_ctl, *start], as_user)
        except PostgresUnavailable as ex:
            log = server_log.read_text() if server_log.exists() else ""
            raise PostgresUnavailable(f"{ex}\nserver log:\n{log}") from None
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], as_user)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str) -> str:
    """Create an empty database on the server at ``server_url``; return its URL."""
    name = f"test_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session", name="postgres_url")
def postgres_url_fixture() -> Iterator[str]:
    """One PostgreSQL server per test process; fails (does not skip) when it cannot run."""
    with postgres_server() as url:
        yield url


@pytest.fixture(name="postgres_database")
def postgres_database_fixture(postgres_url: str) -> str:
    """The URL of a new, empty database on the session's server."""
    return create_database(postgres_url)
