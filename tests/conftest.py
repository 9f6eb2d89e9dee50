"""Shared fixtures: the real server (gunicorn, TLS, SQLite) and an in-process app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest

from proxy import authz
from proxy.app import create_app
from proxy.settings import Settings
from tests.support.servers import Server, run_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server per test process, shared by the integration tests."""
    with run_server(tmp_path_factory.mktemp("server")) as running:
        yield running


class AllowAll:
    """An authorizer for in-process tests of everything behind authorization."""

    def authorize(self, user: object, info: object) -> authz.Decision:
        return authz.Decision(True)


@pytest.fixture
def client(tmp_path: Path) -> falcon.testing.TestClient:
    """The app in-process on a fresh SQLite store, everyone authorized."""
    settings = Settings.from_env({"APISERVER_SQLITE_PATH": str(tmp_path / "store.db")})
    return falcon.testing.TestClient(create_app(settings, authorizer=AllowAll()))
