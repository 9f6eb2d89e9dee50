"""The gunicorn worker: gthread, reading a request's head within kube-apiserver's limit,
answering what gunicorn refuses itself with a ``metav1.Status``, accepting a connection only
while no other worker holds fewer (:mod:`proxy.balance`), and serving a kept-alive
connection's next request on the thread that answered the last one when it comes within the
linger (see the README's Serving section for what each of these was measured to bring).

kube-apiserver reads a request line and header fields of up to 1 MiB in all (``MaxHeaderBytes:
1 << 20`` in k8s.io/apiserver's secure serving, Go's ``DefaultMaxHeaderBytes``). gunicorn
caps the request line at 8190 bytes (4094 by default), so a label selector naming a few hundred
objects was refused, and its field limits (100 fields of 8190 bytes) refuse what kube reads: a
user in more than 100 groups (the aggregator sends one ``X-Remote-Group`` line per group), a
token over 8 KB. :class:`HeadLimitedRequest` holds the line and the fields to one budget
(``APISERVER_MAX_HEADER_BYTES``) instead: no client makes a worker buffer more.

What gunicorn refuses before the application sees a request (a malformed request line, too
large a head, an unknown transfer coding, ...) it answers with an HTML page; Go answers with
plain text. :meth:`StatusWorker.handle_error` answers it with a Status, as every other error of
this server: 400 BadRequest, 414 for a request line over the budget, 431 for a head over it
(Go says 431 for both), 501, 505 for an HTTP version other than 1.x, as Go does.

Imported by gunicorn's master (``worker_class``), so it imports nothing that opens sockets.
"""

from __future__ import annotations

import errno
import functools
import http
import select
import socket
import ssl
from typing import Any

import orjson
from gunicorn import util
from gunicorn.http.errors import (
    ChunkMissingTerminator,
    ConfigurationProblem,
    ExpectationFailed,
    ForbiddenProxyRequest,
    InvalidChunkExtension,
    InvalidChunkSize,
    InvalidH2CPreface,
    InvalidHeader,
    InvalidHeaderName,
    InvalidHTTPVersion,
    InvalidProxyHeader,
    InvalidProxyLine,
    InvalidRequestLine,
    InvalidRequestMethod,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    InvalidSchemeHeaders,
    LimitRequestHeaders,
    LimitRequestLine,
    NoMoreData,
    ObsoleteFolding,
    UnsupportedTransferCoding,
)
from gunicorn.http.message import MAX_HEADERS, Request
from gunicorn.http.parser import RequestParser
from gunicorn.workers.gthread import TConn, ThreadWorker

from handlers.api.errors import ApiError, internal_error, status_error
from proxy import balance
from proxy.settings import Settings

_BAD_REQUEST = (
    InvalidHeader,
    InvalidHeaderName,
    ObsoleteFolding,
    InvalidSchemeHeaders,
    InvalidProxyLine,
    InvalidProxyHeader,
    InvalidH2CPreface,
    InvalidChunkSize,
    ChunkMissingTerminator,
    InvalidChunkExtension,
)
_MESSAGE_CHARS = 200  # what a 400 repeats of the client's bytes
_DEFER_POLL = 0.005  # seconds between looks at the board while a peer takes the connections


class HeadLimitedRequest(Request):  # type: ignore[misc]
    """gunicorn's request, whose head (the request line and the header fields, each with its
    CRLF) must fit in ``budget`` bytes: the line alone may use it all (414 beyond), and so may
    one field (431 beyond). No more than the budget and one read is ever buffered.

    gunicorn's own reader copies and rescans its whole buffer after every 8 KiB read, a third
    of a second of CPU for a 1 MiB head; this one reads the head in linear time, then hands the
    line and the fields to gunicorn's parsing and header policy unchanged."""

    def __init__(self, *args: Any, budget: int) -> None:
        self.budget = budget
        super().__init__(*args)

    def parse(self, unreader: Any) -> bytes:
        self.limit_request_field_size = self.budget
        self.limit_request_fields = MAX_HEADERS  # gunicorn's ceiling; the budget binds first
        head, rest = self._read_head(unreader)
        line, _, fields = head.partition(b"\r\n")
        self.parse_request_line(line)
        self.headers = self.parse_headers(fields, from_trailer=False) if fields else []
        return rest

    def _read_head(self, unreader: Any) -> tuple[bytes, bytes]:
        """The head (without the empty line ending it) and the bytes read after it."""
        buf = bytearray()
        started = False
        line_end = -1
        while True:
            chunk = unreader.read()
            if not chunk:
                if not buf and not started:
                    raise StopIteration()  # the client closed the connection between requests
                raise NoMoreData(bytes(buf))
            scanned = len(buf)
            buf += chunk
            if not started:
                if len(buf) < 2:
                    continue
                started = True
                if buf[:2] == b"\r\n":
                    del buf[:2]  # RFC 9112 2.2: one empty line before the request is ignored
                scanned = 0
            if line_end < 0:
                line_end = buf.find(b"\r\n", max(0, scanned - 1))
            end = buf.find(b"\r\n\r\n", max(0, scanned - 3))
            _refuse_bare_lf(buf, scanned, line_end, end + 4 if end >= 0 else len(buf))
            if line_end < 0:
                pending = len(buf) - (1 if buf.endswith(b"\r") else 0)  # a CR may begin a CRLF
                if pending + 2 > self.budget:
                    raise LimitRequestLine(pending, self.budget)
                continue
            if line_end + 2 > self.budget:
                raise LimitRequestLine(line_end, self.budget)
            if end >= 0 and end + 2 <= self.budget:
                return bytes(buf[:end]), bytes(buf[end + 4 :])
            if end >= 0 or len(buf) - 1 > self.budget:
                raise LimitRequestHeaders("max buffer headers")


def _refuse_bare_lf(buf: bytearray, start: int, line_end: int, stop: int) -> None:
    """RFC 9112 2.2: every line of a head ends with CRLF. A bare LF is refused at once rather
    than waited on, as gunicorn does; what follows the head (``stop`` on) is the body's."""
    at = buf.find(b"\n", start, stop)
    while at >= 0:
        if at == 0 or buf[at - 1] != 0x0D:
            if line_end < 0 or at < line_end:
                raise InvalidRequestLine("bare LF as line terminator")
            raise InvalidHeader("bare LF as line terminator")
        at = buf.find(b"\n", at + 1, stop)


class HeadLimitedConn(TConn):  # type: ignore[misc]
    """gthread's connection, parsing each request as a :class:`HeadLimitedRequest`."""

    def __init__(self, *args: Any, budget: int) -> None:
        super().__init__(*args)
        self.budget = budget
        self._poller: select.poll | None = None

    def next_request(self, seconds: float) -> bool:
        """Whether the next request has begun to arrive within ``seconds``: read already,
        decrypted and waiting, or on the socket."""
        if seconds <= 0 or self.is_http2:
            return False
        if self.parser.unreader.buf.getvalue():
            return True
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(self.sock, select.POLLIN)
        try:
            return bool(self._poller.poll(seconds * 1000))
        except (OSError, ValueError):  # closed meanwhile
            return False

    def init(self) -> None:
        super().init()  # TLS, then the HTTP/1 parser (only on the connection's first request)
        if isinstance(self.parser, RequestParser):
            self.parser.mesg_class = functools.partial(HeadLimitedRequest, budget=self.budget)


class StatusWorker(ThreadWorker):  # type: ignore[misc]
    """gthread with :class:`HeadLimitedConn` connections and Status errors, accepting only
    while no peer holds fewer connections (:mod:`proxy.balance`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._bound = 0
        super().__init__(*args, **kwargs)
        settings = Settings.from_env()
        self.head_budget = settings.max_header_bytes
        self.linger = settings.keepalive_linger_seconds
        self.board = balance.board() if settings.balance_connections else None
        self.board_slot: int | None = None  # given by the master's pre_fork hook

    @property
    def worker_connections(self) -> int:
        """The connections this worker may hold now: gunicorn's bound, or no more than it
        holds already while a live peer holds fewer (gthread stops listening at the bound)."""
        if self.board is None or self.board_slot is None:
            return self._bound
        held: int = self.nr_conns
        least = self.board.least_peer(self.board_slot)
        if held > least + least // 8:  # within an eighth: a burst is taken in long strides
            return min(self._bound, held)
        return self._bound

    @worker_connections.setter
    def worker_connections(self, bound: int) -> None:
        self._bound = bound

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        """gthread's wait, but short while this worker leaves new connections to a peer: it
        must see soon that the peer took enough of them, or when a burst of connections
        (a thousand watches) fills the peer nobody would accept until it woke."""
        deferring = self.board is not None and not self._accepting
        super().wait_for_and_dispatch_events(min(timeout, _DEFER_POLL) if deferring else timeout)

    def handle(self, conn: HeadLimitedConn) -> Any:
        """gthread's, then on this thread each next request of the kept-alive connection that
        begins within the linger (``APISERVER_KEEPALIVE_LINGER_SECONDS``), as Go serves a
        connection on its goroutine. gthread would hand the connection to the main thread's
        poller and back to a pool thread for each request: two more thread switches, and as
        many handoffs of Python's lock between the threads of a busy worker."""
        result = super().handle(conn)
        while result is True and self.alive and conn.next_request(self.linger):
            conn.data_ready = True
            result = super().handle(conn)
        return result

    def notify(self) -> None:
        """gthread's heartbeat, once per turn of its loop: also tell the peers our load."""
        super().notify()
        if self.board is not None and self.board_slot is not None:
            self.board.publish(self.board_slot, self.nr_conns)

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        if cfg.proxy_protocol != "off":
            raise RuntimeError(f"{cls.__name__} does not read the PROXY protocol")

    def accept(self, listener: socket.socket) -> None:
        """gthread's, with the connection class of this worker."""
        try:
            client, address = listener.accept()
        except OSError as ex:
            if ex.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client.setblocking(True)
        conn = HeadLimitedConn(
            self.cfg, client, address, listener.getsockname(), budget=self.head_budget
        )
        self.enqueue_req(conn)

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """Answer with a Status where gunicorn would write its HTML page (the connection is
        closed after it, as gunicorn does)."""
        error = refusal(exc, self.head_budget)
        ip = addr[0] if addr else ""
        if error.reason == "InternalError":
            self.log.exception("Error handling request from ip=%s", ip)
        else:
            self.log.warning("Invalid request from ip=%s: %s", ip, exc)
        try:
            util.write_nonblock(client, response(error))
        except Exception:  # the client may be gone; nothing is left to tell it
            self.log.debug("Failed to send error message.")


def refusal(exc: BaseException, budget: int) -> ApiError:
    """The Status for what gunicorn raised before the application saw the request (Go's words
    where Go has some)."""
    if isinstance(exc, InvalidResponseHeader | InvalidResponseHeaderName):
        return internal_error(type(exc).__name__)  # the application's fault, not the client's
    if isinstance(exc, LimitRequestLine):
        return status_error(414, f"the request line exceeds {budget} bytes")
    if isinstance(exc, LimitRequestHeaders):
        if str(exc) == "limit request headers fields":
            return status_error(431, f"the request has more than {MAX_HEADERS} header fields")
        return status_error(431, f"the request line and headers exceed {budget} bytes")
    if isinstance(exc, InvalidRequestLine):
        return status_error(400, f"malformed HTTP request {_quoted(exc.req)}")
    if isinstance(exc, InvalidRequestMethod):
        return status_error(400, f"invalid method {_quoted(exc.method)}")
    if isinstance(exc, InvalidHTTPVersion):
        if isinstance(exc.version, tuple):  # well formed, but not 1.x
            return status_error(505, "unsupported protocol version")
        return status_error(400, f"malformed HTTP version {_quoted(exc.version)}")
    if isinstance(exc, UnsupportedTransferCoding):
        return status_error(501, "Unsupported transfer encoding")  # Go does not echo it either
    if isinstance(exc, ExpectationFailed):
        return status_error(417, f"unsupported expectation {_quoted(exc.expect)}")
    if isinstance(exc, _BAD_REQUEST):
        return status_error(400, _clipped(str(exc)))
    if isinstance(exc, ForbiddenProxyRequest | ssl.SSLError):
        return status_error(403, _clipped(str(exc)))
    if isinstance(exc, ConfigurationProblem):
        return internal_error(_clipped(str(exc)))
    return internal_error(type(exc).__name__)


def response(error: ApiError) -> bytes:
    """An HTTP/1.1 response carrying the Status; the connection closes after it."""
    body = orjson.dumps(error.status())
    head = [
        f"HTTP/1.1 {error.code} {http.HTTPStatus(error.code).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{key}: {value}" for key, value in error.headers.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _clipped(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "..."


def _quoted(value: object) -> str:
    return _clipped(orjson.dumps(str(value)).decode())
