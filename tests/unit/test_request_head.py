"""A request's head (request line and header fields) is read within one budget, kube's 1 MiB by
default, and what gunicorn refuses becomes a Status (R3) instead of gunicorn's HTML page."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable

import orjson
import pytest
from gunicorn.config import Config
from gunicorn.http.errors import (
    ExpectationFailed,
    InvalidHeader,
    InvalidHeaderName,
    InvalidHTTPVersion,
    InvalidRequestLine,
    InvalidRequestMethod,
    InvalidResponseHeader,
    LimitRequestHeaders,
    LimitRequestLine,
    NoMoreData,
    UnsupportedTransferCoding,
)
from gunicorn.http.parser import RequestParser
from gunicorn.workers.gthread import ThreadWorker

from proxy.settings import Settings
from proxy.worker import HeadLimitedRequest, StatusWorker, refusal, response

BUDGET = 20_000


def parser(stream: bytes, budget: int = BUDGET, chunk: int = 1000) -> RequestParser:
    """gunicorn's parser reading ``stream`` as the worker's connections do, ``chunk`` bytes
    at a time."""
    config = Config()
    pieces: Iterable[bytes] = (stream[i : i + chunk] for i in range(0, len(stream), chunk))
    reader = RequestParser(config, pieces, ("127.0.0.1", 4242))
    reader.mesg_class = functools.partial(HeadLimitedRequest, budget=budget)
    return reader


def read(head: bytes, budget: int = BUDGET, chunk: int = 1000) -> HeadLimitedRequest:
    request: HeadLimitedRequest = next(parser(head, budget, chunk))
    return request


def request_line(length: int) -> bytes:
    """``GET /...?q=xxx HTTP/1.1`` of exactly ``length`` bytes (without its CRLF)."""
    start, end = b"GET /apis?labelSelector=", b" HTTP/1.1"
    return start + b"x" * (length - len(start) - len(end)) + end


def test_the_default_budget_is_kubes_one_mib() -> None:
    assert Settings.from_env({}).max_header_bytes == 1024 * 1024


@pytest.mark.parametrize("chunk", [1, 1000, 8192])
def test_a_request_line_may_use_the_whole_budget(chunk: int) -> None:
    request = read(request_line(BUDGET - 2) + b"\r\n\r\n", chunk=chunk)
    assert len(request.uri) > 8190  # gunicorn's ceiling
    assert request.headers == []
    with pytest.raises(LimitRequestLine):
        read(request_line(BUDGET - 1) + b"\r\n\r\n", chunk=chunk)


@pytest.mark.parametrize("chunk", [1, 1000, 8192])
def test_line_and_fields_share_the_budget(chunk: int) -> None:
    line = request_line(BUDGET // 2) + b"\r\n"
    fields = b"".join(b"X-Field-%04d: %s\r\n" % (i, b"v" * 80) for i in range(BUDGET // 200))
    fill = BUDGET - len(line) - len(fields) - len(b"X-Fill: \r\n")
    head = line + fields + b"X-Fill: " + b"f" * fill + b"\r\n"
    assert len(head) == BUDGET
    assert len(read(head + b"\r\n", chunk=chunk).headers) == BUDGET // 200 + 1
    over = line + fields + b"X-Fill: " + b"f" * (fill + 1) + b"\r\n"
    with pytest.raises(LimitRequestHeaders):
        read(over + b"\r\n", chunk=chunk)


def test_one_field_may_be_larger_than_gunicorns_8190_bytes() -> None:
    field = b"Authorization: Bearer " + b"t" * 20_000 + b"\r\n"
    request = read(b"GET / HTTP/1.1\r\n" + field + b"\r\n", budget=32_768)
    assert len(request.headers[0][1]) == 20_007


def test_more_than_gunicorns_100_fields_are_read() -> None:
    groups = b"".join(b"X-Remote-Group: g%d\r\n" % i for i in range(300))
    request = read(b"GET / HTTP/1.1\r\n" + groups + b"\r\n", budget=BUDGET * 4)
    assert len(request.headers) == 300


def test_a_client_cannot_make_the_parser_buffer_beyond_the_budget() -> None:
    endless = b"GET / HTTP/1.1\r\nX-A: " + b"a" * (BUDGET * 100)  # never ends its head
    with pytest.raises(LimitRequestHeaders):
        read(endless)
    with pytest.raises(LimitRequestLine):
        read(b"GET /" + b"a" * (BUDGET * 100))


def test_requests_on_one_connection_are_read_one_after_the_other() -> None:
    first = b"\r\nPOST /a HTTP/1.1\r\nContent-Length: 5\r\nHost: x\r\n\r\nhello"
    second = b"GET /b?c=d HTTP/1.1\r\nHost: x\r\n\r\n"
    reader = parser(first + second, chunk=7)
    one = next(reader)
    assert (one.method, one.path, one.headers) == (
        "POST",
        "/a",
        [("CONTENT-LENGTH", "5"), ("HOST", "x")],
    )
    assert one.body.read() == b"hello"
    two = next(reader)
    assert (two.method, two.path, two.query) == ("GET", "/b", "c=d")
    with pytest.raises(StopIteration):
        next(reader)


@pytest.mark.parametrize("chunk", [3, 1000])
def test_line_feeds_of_the_body_read_with_the_head_are_the_bodys(chunk: int) -> None:
    """A body (YAML, pretty JSON) arrives in the same read as the head: its bare LFs are
    not the head's."""
    body = b"metadata:\n  name: x\nspec: {}\n"
    head = b"POST /a HTTP/1.1\r\nContent-Length: %d\r\nHost: x\r\n\r\n" % len(body)
    request = next(parser(head + body, chunk=chunk))
    assert request.method == "POST"
    assert request.body.read() == body


def test_a_head_cut_short_is_no_request() -> None:
    with pytest.raises(NoMoreData):
        read(b"GET / HTTP/1.1\r\nHost: x\r\n")


@pytest.mark.parametrize(
    ("head", "refused"),
    [
        (b"GET / HTTP/1.1\nHost: x\r\n\r\n", InvalidRequestLine),
        (b"GET / HTTP/1.1\r\nHost: x\n\n", InvalidHeader),
    ],
)
def test_a_bare_lf_is_refused_without_waiting(head: bytes, refused: type[Exception]) -> None:
    with pytest.raises(refused):
        read(head)


def test_gunicorns_header_policy_still_applies() -> None:
    assert read(b"GET / HTTP/1.1\r\nX_Remote_User: eve\r\nHost: x\r\n\r\n").headers == [
        ("HOST", "x")
    ]
    with pytest.raises(InvalidHeader):
        read(b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")


@pytest.mark.parametrize(
    ("exc", "code", "reason", "message"),
    [
        (LimitRequestLine(30_000, BUDGET), 414, "Unknown", "the request line exceeds 20000 bytes"),
        (
            LimitRequestHeaders("max buffer headers"),
            431,
            "Unknown",
            "the request line and headers exceed 20000 bytes",
        ),
        (
            LimitRequestHeaders("limit request headers fields"),
            431,
            "Unknown",
            "the request has more than 32768 header fields",
        ),
        (InvalidRequestLine("GARBAGE"), 400, "BadRequest", 'malformed HTTP request "GARBAGE"'),
        (InvalidRequestMethod("get"), 400, "BadRequest", 'invalid method "get"'),
        (InvalidHTTPVersion("HTTP/x"), 400, "BadRequest", 'malformed HTTP version "HTTP/x"'),
        (InvalidHTTPVersion((2, 0)), 505, "Unknown", "unsupported protocol version"),
        (UnsupportedTransferCoding("foo"), 501, "Unknown", "Unsupported transfer encoding"),
        (ExpectationFailed("magic"), 417, "Unknown", 'unsupported expectation "magic"'),
        (InvalidHeader("Host x"), 400, "BadRequest", "Invalid HTTP Header: 'Host x'"),
        (InvalidHeaderName("a b"), 400, "BadRequest", "Invalid HTTP header name: 'a b'"),
        (ssl.SSLError(1, "bad"), 403, "Forbidden", "bad"),
        (
            InvalidResponseHeader("X"),
            500,
            "InternalError",
            "Internal error occurred: InvalidResponseHeader",
        ),
        (RuntimeError("boom"), 500, "InternalError", "Internal error occurred: RuntimeError"),
    ],
)
def test_gunicorns_refusals_become_statuses(
    exc: BaseException, code: int, reason: str, message: str
) -> None:
    error = refusal(exc, BUDGET)
    assert (error.code, error.reason, error.message) == (code, reason, message)


def test_a_400_repeats_little_of_what_the_client_sent() -> None:
    error = refusal(InvalidRequestLine("x" * 10_000), BUDGET)
    assert len(error.message) < 300


def test_the_refusal_is_a_json_status_on_a_closing_connection() -> None:
    raw = response(refusal(InvalidHTTPVersion((2, 0)), BUDGET))
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 505 HTTP Version Not Supported"
    assert "Content-Type: application/json" in lines
    assert "Connection: close" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert orjson.loads(body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "unsupported protocol version",
        "reason": "Unknown",
        "code": 505,
    }


def test_the_worker_is_gthread() -> None:
    assert issubclass(StatusWorker, ThreadWorker)
