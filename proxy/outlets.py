"""Where the bytes of a watch go once the fan-out carries it.

Under gunicorn the fan-out thread writes HTTP chunks straight to the client's socket, without
blocking, while the request's own thread only waits for the end: one thread encodes and
writes for every watch of the process, and a slow client costs nothing but its own buffer.
Servers that do not expose their socket get the same bytes through the request's thread.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any, Protocol

_WOULD_BLOCK = (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError, InterruptedError)
_WRITE_SIZE = 256 * 1024  # bytes given to one send
_LAST_WRITE_TIMEOUT = 10.0  # seconds gunicorn may take to write the final chunk


class Outlet(Protocol):
    """A watch's way to its client, driven by the fan-out thread."""

    pending: int  # bytes accepted and not yet written

    def fileno(self) -> int | None:
        """A descriptor to poll for writability and for the client leaving, if there is one."""

    def start(self) -> None:
        """The fan-out takes over from the request's thread."""

    def send(self, lines: list[bytes]) -> bool:
        """Queue ``lines`` (shared with other watches: not copied) and write what can be
        written now; False when some is left."""

    def flush(self) -> bool:
        """Write more of what is queued; True when nothing is left."""

    def left(self) -> bool:
        """The descriptor polled readable: True when the client hung up (or spoke out of turn)."""

    def finish(self) -> None:
        """End the stream cleanly; the request's thread writes the last chunk."""

    def abort(self) -> None:
        """Cut the stream (the client resumes from its last resourceVersion)."""

    def relay(self) -> Iterator[bytes]:
        """What the request's thread yields while the fan-out carries the watch."""


def outlet_for(environ: MutableMapping[str, Any]) -> Outlet:
    """The client's socket under gunicorn with HTTP/1.1 chunked responses, else a queue."""
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket) and environ.get("SERVER_PROTOCOL") == "HTTP/1.1":
        return SocketOutlet(sock)
    return QueueOutlet()


class SocketOutlet:
    """HTTP chunks written by the fan-out thread to a socket gunicorn already sent headers on.

    Gunicorn is waiting inside the response iterator, so nothing else touches the socket until
    :meth:`relay` returns; then gunicorn writes the terminating chunk on its own."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._head = b""  # being written: TLS wants the same bytes again after WANT_WRITE
        self._rest: collections.deque[bytes] = collections.deque()
        self.pending = 0
        self._done = threading.Event()

    def fileno(self) -> int | None:
        return self._sock.fileno()

    def start(self) -> None:
        self._sock.setblocking(False)

    def send(self, lines: list[bytes]) -> bool:
        size = sum(map(len, lines))
        header = b"%x\r\n" % size
        self._rest.append(header)
        self._rest.extend(lines)
        self._rest.append(b"\r\n")
        self.pending += len(header) + size + 2
        return self.flush()

    def flush(self) -> bool:
        while True:
            if not self._head:
                if not self._rest:
                    return True
                self._head = self._take()
            try:
                written = self._sock.send(self._head)
            except _WOULD_BLOCK:
                return False
            self.pending -= written
            self._head = self._head[written:]

    def _take(self) -> bytes:
        """The next bytes to write, copied into one buffer of bounded size."""
        taken, size = [], 0
        while self._rest and size < _WRITE_SIZE:
            piece = self._rest.popleft()
            taken.append(piece)
            size += len(piece)
        return b"".join(taken)

    def left(self) -> bool:
        try:
            self._sock.recv(4096)  # b"" is the client's end; anything else is out of turn
        except _WOULD_BLOCK:
            return False  # a TLS record with no data for us (a key update, say)
        except OSError:
            pass
        return True

    def finish(self) -> None:
        self._sock.settimeout(_LAST_WRITE_TIMEOUT)
        self._done.set()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._done.set()

    def relay(self) -> Iterator[bytes]:
        self._done.wait()
        yield from ()


class QueueOutlet:
    """Chunks handed to the request's thread, which yields them through the WSGI server."""

    def __init__(self) -> None:
        self.pending = 0
        self._chunks: collections.deque[bytes] = collections.deque()
        self._over = False
        self._ready = threading.Condition()

    def fileno(self) -> int | None:
        return None

    def start(self) -> None:
        pass

    def send(self, lines: list[bytes]) -> bool:
        data = b"".join(lines)
        with self._ready:
            self._chunks.append(data)
            self.pending += len(data)
            self._ready.notify()
        return True

    def flush(self) -> bool:
        return True

    def left(self) -> bool:
        return False

    def finish(self) -> None:
        with self._ready:
            self._over = True
            self._ready.notify()

    abort = finish

    def relay(self) -> Iterator[bytes]:
        while True:
            with self._ready:
                while not self._chunks and not self._over:
                    self._ready.wait()
                data = b"".join(self._chunks)
                self._chunks.clear()
                self.pending -= len(data)
                over = self._over
            if data:
                yield data
            if over:
                return


def observed(stream: Iterable[bytes], done: Callable[[], object]) -> Iterator[bytes]:
    """``stream`` as it is, then ``done()`` when it ends, however it ends: the metrics and the
    audit log see a watch when it is over."""
    try:
        yield from stream
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # the server closes only the outer stream
        done()
