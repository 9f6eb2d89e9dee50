"""R3 at the protocol level, through real gunicorn and TLS: a request's line and headers are
read up to kube-apiserver's 1 MiB (Go's DefaultMaxHeaderBytes), and everything gunicorn refuses
on its own is a metav1.Status in JSON, never an HTML page. Where a client library will not send
the malformed thing, raw bytes go over a TLS socket."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import orjson
import pytest

from tests.support.servers import Server

GV = "/apis/search.task.example.example.com/v1"
MIB = 1024 * 1024


def exchange(server: Server, raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Send ``raw`` over TLS, read until the server closes; the status, headers and JSON body."""
    context = ssl.create_default_context(cafile=server.pki.ca_file)
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=30) as plain,
        context.wrap_socket(plain, server_hostname="localhost") as tls,
    ):
        tls.sendall(raw)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split(" ")[1]), headers, orjson.loads(body)


def assert_status(
    answer: tuple[int, dict[str, str], dict[str, Any]], code: int, reason: str
) -> str:
    """The answer is a closing JSON Status of ``code`` and ``reason``; returns its message."""
    status, headers, body = answer
    assert status == code
    assert headers["Content-Type"] == "application/json"
    assert headers["Connection"] == "close"
    assert (body["kind"], body["apiVersion"], body["status"]) == ("Status", "v1", "Failure")
    assert (body["code"], body["reason"]) == (code, reason)
    message: str = body["message"]
    return message


def test_a_label_selector_of_450_names_is_served(server: Server) -> None:
    names = ",".join(f"task-{i:04d}" for i in range(450))
    r = server.session().get(
        f"{server.url}{GV}/clustertasks", params={"labelSelector": f"name in ({names})"}
    )
    assert len(r.request.url or "") > 4096  # gunicorn's own limit refused it with HTML
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "ClusterTaskList"


def test_a_request_line_far_over_gunicorns_cap_is_read(server: Server) -> None:
    names = ",".join(f"task-{i:06d}" for i in range(20_000))
    r = server.session().get(
        f"{server.url}{GV}/clustertasks", params={"labelSelector": f"name in ({names})"}
    )
    assert len(r.request.url or "") > 200_000
    assert r.status_code == 200, r.text


def test_headers_of_kube_size_are_read(server: Server) -> None:
    groups = {f"X-Extra-{i:03d}": "g" * 2000 for i in range(400)}  # 400 fields, ~800 KB
    r = server.session().get(f"{server.url}{GV}/clustertasks", headers=groups)
    assert r.status_code == 200, r.text


def test_a_request_line_over_one_mib_is_a_414_status(server: Server) -> None:
    line = b"GET " + GV.encode() + b"/clustertasks?labelSelector=" + b"x" * (MIB + 20_000)
    answer = exchange(server, line + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert assert_status(answer, 414, "Unknown") == f"the request line exceeds {MIB} bytes"


def test_headers_over_one_mib_in_all_are_a_431_status(server: Server) -> None:
    fields = b"".join(b"X-Big-%02d: %s\r\n" % (i, b"b" * 60_000) for i in range(18))
    head = b"GET " + GV.encode() + b"/clustertasks HTTP/1.1\r\nHost: localhost\r\n" + fields
    answer = exchange(server, head + b"\r\n")
    message = assert_status(answer, 431, "Unknown")
    assert message == f"the request line and headers exceed {MIB} bytes"


@pytest.mark.parametrize(
    ("raw", "code", "reason", "message"),
    [
        (b"GARBAGE\r\n\r\n", 400, "BadRequest", 'malformed HTTP request "GARBAGE"'),
        (b"get /version HTTP/1.1\r\n\r\n", 400, "BadRequest", 'invalid method "get"'),
        (b"GET /version HTTP/x\r\n\r\n", 400, "BadRequest", 'malformed HTTP version "HTTP/x"'),
        (b"GET /version HTTP/2.0\r\n\r\n", 505, "Unknown", "unsupported protocol version"),
        (
            b"GET /version HTTP/1.1\r\nHost localhost\r\n\r\n",
            400,
            "BadRequest",
            "Invalid HTTP Header: 'Host localhost'",
        ),
        (
            b"POST /version HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: zip\r\n\r\n",
            501,
            "Unknown",
            "Unsupported transfer encoding",
        ),
        (
            b"GET /version HTTP/1.1\r\nHost: localhost\r\nExpect: magic\r\n\r\n",
            417,
            "Unknown",
            'unsupported expectation "magic"',
        ),
    ],
)
def test_what_gunicorn_refuses_is_a_status_not_html(
    server: Server, raw: bytes, code: int, reason: str, message: str
) -> None:
    assert assert_status(exchange(server, raw), code, reason) == message


def test_the_server_keeps_serving_after_refusals(server: Server) -> None:
    exchange(server, b"GARBAGE\r\n\r\n")
    assert server.anonymous().get(server.url + "/readyz").text == "ok"
