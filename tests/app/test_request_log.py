"""The request log is one JSON line a request on stdout; when stdout cannot take it (closed, as
a pipe whose reader left), the line is lost and the request still answered, as kube-apiserver's
klog drops what it cannot write."""

from __future__ import annotations

import os

import falcon.testing
import orjson

PATH = "/apis/search.task.example.example.com/v1/namespaces/default/customtasks"


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
    read, write = os.pipe()
    saved = os.dup(1)
    os.dup2(write, 1)
    os.close(write)
    try:
        client.simulate_get(f"{PATH}/missing")
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    with os.fdopen(read, "rb") as out:
        (line,) = out.read().splitlines()
    logged = orjson.loads(line)
    assert (logged["method"], logged["code"], logged["verb"]) == ("GET", 404, "get")
    assert logged["path"] == f"{PATH}/missing"
