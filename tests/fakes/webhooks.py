"""A fake admission webhook: HTTPS on loopback with its own CA, answering each
AdmissionReview with what a test decides, as Kyverno, Gatekeeper or an in-house webhook
would. It records what it was sent, and can be slow, malformed or wrong on purpose."""

from __future__ import annotations

import base64
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from devtools.certs import issue, new_ca

Decide = Callable[[dict[str, Any]], dict[str, Any]]
"""An AdmissionReview ``request`` -> the ``response`` fields besides ``uid``."""


def allow(request: dict[str, Any]) -> dict[str, Any]:
    return {"allowed": True}


def json_patch(operations: list[dict[str, Any]]) -> dict[str, Any]:
    """The response fields of a JSON patch, as a mutating webhook sends one."""
    return {
        "allowed": True,
        "patchType": "JSONPatch",
        "patch": base64.b64encode(orjson.dumps(operations)).decode(),
    }


class FakeWebhook:
    """``https://127.0.0.1:<port>/<any path>``; ``decide`` answers, ``delay`` seconds before,
    ``malformed`` answers broken JSON, ``wrong_uid`` answers another request's uid."""

    def __init__(self, decide: Decide = allow) -> None:
        self.decide = decide
        self.delay = 0.0
        self.malformed = False
        self.wrong_uid = False
        self.reviews: list[dict[str, Any]] = []
        self.connections = 0
        """TLS connections accepted (a client that reuses its connection opens one)."""
        self._lock = threading.Lock()
        ca = new_ca("fake-webhook-ca")
        leaf = issue(ca, "fake-webhook", ip_addresses=["127.0.0.1"], server=True)
        self._dir = tempfile.TemporaryDirectory(prefix="fakewebhook-")
        directory = Path(self._dir.name)
        (directory / "tls.crt").write_bytes(leaf.cert_pem)
        (directory / "tls.key").write_bytes(leaf.key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(directory / "tls.crt", directory / "tls.key")
        self.ca_bundle = base64.b64encode(ca.cert_pem).decode()
        self._server = _Server(self, context)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def client_config(self, path: str = "/validate") -> dict[str, Any]:
        return {"url": f"{self.url}{path}", "caBundle": self.ca_bundle}

    def requests(self) -> list[dict[str, Any]]:
        """The AdmissionReview requests received so far."""
        with self._lock:
            return [review["request"] for review in self.reviews]

    def __enter__(self) -> FakeWebhook:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._dir.cleanup()

    def answer(self, body: bytes) -> bytes:
        review = orjson.loads(body)
        with self._lock:
            self.reviews.append(review)
        time.sleep(self.delay)
        if self.malformed:
            return b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionRev'
        request = review["request"]
        uid = "not-" + request["uid"] if self.wrong_uid else request["uid"]
        return orjson.dumps(
            {
                "apiVersion": review["apiVersion"],
                "kind": "AdmissionReview",
                "response": {"uid": uid, **self.decide(request)},
            }
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, webhook: FakeWebhook, context: ssl.SSLContext) -> None:
        self.webhook = webhook
        self.context = context
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        # headers and body go out as two writes: without this, Nagle holds the body back
        # until the client acknowledges the headers, up to its delayed-ACK timer (40 ms)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.webhook._lock:
            self.webhook.connections += 1
        return self.context.wrap_socket(sock, server_side=True), address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as kube-apiserver reuses its connections
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.server.webhook.answer(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read what was received from ``reviews``."""
