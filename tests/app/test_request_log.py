"""The request log: with ``APISERVER_REQUEST_LOG=all`` one JSON line a request on stdout, by
default a line for the server's errors only (kube writes request lines at verbosity 3); when
stdout cannot take a line (closed, as a pipe whose reader left), the line is lost and the
request still answered, as kube-apiserver's klog drops what it cannot write."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import falcon.testing
import orjson
import pytest

from proxy.app import create_app
from proxy.settings import Settings
from tests.conftest import AllowAll

PATH = "/apis/search.task.example.example.com/v1/namespaces/default/customtasks"


@pytest.fixture
def client(tmp_path: Path) -> falcon.testing.TestClient:
    """An app logging every request."""
    return _client(tmp_path, {"APISERVER_REQUEST_LOG": "all"})


def _client(tmp_path: Path, env: dict[str, str]) -> falcon.testing.TestClient:
    settings = Settings.from_env({"APISERVER_SQLITE_PATH": str(tmp_path / "store.db"), **env})
    return falcon.testing.TestClient(create_app(settings, authorizer=AllowAll()))


@contextmanager
def _stdout() -> Iterator[Callable[[], list[bytes]]]:
    """stdout into a pipe; what was written, line by line, once the block ends."""
    read, write = os.pipe()
    saved = os.dup(1)
    os.dup2(write, 1)
    os.close(write)
    lines: list[bytes] = []
    try:
        yield lambda: lines
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        with os.fdopen(read, "rb") as out:
            lines.extend(out.read().splitlines())


def test_a_closed_stdout_loses_the_line_not_the_request(
    client: falcon.testing.TestClient,
) -> None:
    read, write = os.pipe()
    saved = os.dup(1)
    os.dup2(write, 1)
    os.close(write)
    try:
        listed = client.simulate_get(PATH)
        os.close(read)  # the reader leaves: the next line meets a broken pipe
        after = client.simulate_get(PATH)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    assert (listed.status_code, after.status_code) == (200, 200)
    assert after.json == listed.json


def test_each_request_is_one_json_line_on_stdout(client: falcon.testing.TestClient) -> None:
    with _stdout() as written:
        client.simulate_get(f"{PATH}/missing")
    (line,) = written()
    logged = orjson.loads(line)
    assert (logged["method"], logged["code"], logged["verb"]) == ("GET", 404, "get")
    assert logged["path"] == f"{PATH}/missing"


def test_by_default_only_the_server_errors_are_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quiet = _client(tmp_path, {})
    with _stdout() as written:
        assert quiet.simulate_get(f"{PATH}/missing").status_code == 404
        assert quiet.simulate_get(PATH).status_code == 200
    assert written() == []
    monkeypatch.setattr("store.sqlite.SQLiteStore.list", _broken)
    with _stdout() as written:
        failed = quiet.simulate_get(PATH)
    assert failed.status_code == 500
    (line,) = [orjson.loads(x) for x in written() if b"requestId" in x]
    assert (line["code"], line["verb"], line["requestId"]) == (
        500,
        "list",
        failed.headers["X-Request-Id"],
    )


def test_none_logs_no_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    silent = _client(tmp_path, {"APISERVER_REQUEST_LOG": "none"})
    monkeypatch.setattr("store.sqlite.SQLiteStore.list", _broken)
    with _stdout() as written:
        assert silent.simulate_get(PATH).status_code == 500
    assert not [x for x in written() if b"requestId" in x]


def test_an_unknown_choice_is_named() -> None:
    with pytest.raises(ValueError, match="APISERVER_REQUEST_LOG must be one of all, errors, none"):
        Settings.from_env({"APISERVER_REQUEST_LOG": "verbose"})


def _broken(*args: object, **kwargs: object) -> None:
    raise RuntimeError("the disk went away")
