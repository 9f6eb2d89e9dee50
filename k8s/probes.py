"""The Task controller's small HTTP port, as controller-runtime's health probe and metrics
servers: ``/healthz`` and ``/readyz`` for the kubelet's probes (kube's answers:
:mod:`k8s.health`), and ``/metrics`` for Prometheus.

Plain HTTP with no authentication, as controller-runtime's probe port: the probes and the
metrics say only how the controller is doing (counts and durations, never an object).
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from k8s import health

log = logging.getLogger("task-controller")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
            return
        checks = self.server.checks.get(url.path.strip("/"))
        if checks is None:
            self._send(404, "text/plain; charset=utf-8", b"404 page not found\n")
            return
        query = parse_qs(url.query, keep_blank_values=True)
        found = health.answer(
            url.path.strip("/"),
            checks,
            exclude=[name for value in query.get("exclude", []) for name in value.split(",")],
            verbose="verbose" in query,
        )
        if found.failed:
            log.warning("%s check failed: %s", url.path, "; ".join(found.reasons))
        self._send(500 if found.failed else 200, "text/plain; charset=utf-8", found.text.encode())

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """The kubelet probes every few seconds: not worth a log line each."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], checks: dict[str, dict[str, health.Check]]):
        self.checks = checks
        super().__init__(address, _Handler)


class Probes:
    """``/healthz`` (the process answers), ``/readyz`` (every ``ready`` check passes) and
    ``/metrics`` on ``host:port`` (port 0: a free one), served by daemon threads."""

    def __init__(self, host: str, port: int, ready: dict[str, health.Check]) -> None:
        ping: dict[str, health.Check] = {"ping": lambda: ""}
        self._server = _Server((host, port), {"healthz": ping, "readyz": {**ping, **ready}})

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> Probes:
        threading.Thread(target=self._server.serve_forever, name="probes", daemon=True).start()
        log.info("probes and metrics on port %d", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
