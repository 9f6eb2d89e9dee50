"""A minimal HTTP/1.1 client over one keep-alive TLS connection.

A general client (requests, urllib3) spends more CPU per request than a small server does,
and here both share two cores: this one sends prebuilt bytes and only frames the response
(status, Content-Length or chunked), so the load generator stays out of the measurement.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import NamedTuple

_RECV = 256 * 1024
_KEEP_ERROR = 512  # bytes of an error body kept for the report
_NO_BODY = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect and with which credentials (picklable, for client processes)."""

    host: str
    port: int
    ca_file: str
    cert_file: str
    key_file: str

    def context(self) -> ssl.SSLContext:
        """Verify the server against the CA and present the client certificate."""
        context = ssl.create_default_context(cafile=self.ca_file)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def head(self, method: str, path: str, *, accept: str = "application/json") -> bytes:
        """The request line and headers shared by every request to this target."""
        return (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Accept: {accept}\r\nUser-Agent: bench\r\n"
        ).encode()

    def get(self, path: str) -> bytes:
        """A complete GET request."""
        return self.head("GET", path) + b"\r\n"


class Reply(NamedTuple):
    """What the caller needs of a response: status, body size, and the body when kept."""

    status: int
    size: int
    body: bytes


class Connection:
    """One persistent TLS connection; reconnects only if the server closes it."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._context = target.context()
        self._buf = bytearray()
        self._scratch = memoryview(bytearray(_RECV))
        self._sock = self._connect()
        self.reconnects = 0

    def _connect(self) -> ssl.SSLSocket:
        raw = socket.create_connection((self._target.host, self._target.port), timeout=60)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._context.wrap_socket(raw, server_hostname=self._target.host)

    def close(self) -> None:
        """Close the connection (the server then frees its keep-alive slot at once)."""
        self._sock.close()

    def exchange(self, request: bytes, *, keep: bool = False) -> Reply:
        """Send one request and read its response; the body is kept if asked or an error."""
        self._sock.sendall(request)
        head = self._read_head()
        status = int(head[9:12])
        lower = head.lower()
        keep = keep or status >= 300
        if status in _NO_BODY or request.startswith(b"HEAD "):
            size, body = 0, b""
        elif b"\r\ntransfer-encoding: chunked" in lower:
            size, body = self._read_chunked(keep)
        else:
            size = _content_length(lower)
            body = self._read_exact(size, keep)
        if b"\r\nconnection: close" in lower:
            self.reopen()
        return Reply(status, size, body[:_KEEP_ERROR] if status >= 300 else body)

    def reopen(self) -> None:
        """Start over on a new connection: the server closed or broke this one."""
        self._sock.close()
        self._buf.clear()
        self._sock = self._connect()
        self.reconnects += 1

    def _fill(self) -> None:
        """Append what arrived, read into the reused scratch buffer."""
        n = self._sock.recv_into(self._scratch, _RECV)
        if not n:
            raise ConnectionError("the server closed the connection")
        self._buf += self._scratch[:n]

    def _read_head(self) -> bytes:
        start = 0
        while (end := self._buf.find(b"\r\n\r\n", start)) < 0:
            start = max(0, len(self._buf) - 3)
            self._fill()
        head = bytes(self._buf[:end])
        del self._buf[: end + 4]
        return head

    def _read_line(self) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def _read_exact(self, size: int, keep: bool) -> bytes:
        """Consume ``size`` body bytes; large bodies go through a scratch buffer, not a copy."""
        kept = bytearray()
        buffered = min(size, len(self._buf))
        if keep:
            kept += self._buf[:buffered]
        del self._buf[:buffered]
        left = size - buffered
        while left:
            n = self._sock.recv_into(self._scratch, min(left, _RECV))
            if not n:
                raise ConnectionError("the server closed the connection mid-body")
            if keep:
                kept += self._scratch[:n]
            left -= n
        return bytes(kept)

    def _read_chunked(self, keep: bool) -> tuple[int, bytes]:
        size, parts = 0, []
        while chunk := int(self._read_line().split(b";")[0], 16):
            parts.append(self._read_exact(chunk, keep))
            self._read_exact(2, False)
            size += chunk
        while self._read_line():  # trailers, up to the empty line
            pass
        return size, b"".join(parts)


def _content_length(lower_head: bytes) -> int:
    start = lower_head.find(b"\r\ncontent-length:")
    if start < 0:
        raise ValueError("response without Content-Length or chunked framing")
    start += len(b"\r\ncontent-length:")
    end = lower_head.find(b"\r\n", start)
    return int(lower_head[start : end if end >= 0 else None])
