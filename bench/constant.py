"""A Falcon app that answers every GET with the same ~1.4 KB JSON document.

Served under the real server's gunicorn settings, its gets/s is the ceiling of the stack
(TLS + gunicorn + Falcon): the real server can only be compared against what is left.
The TLS context those settings build trusts the client CAs :mod:`proxy.tls` is told about,
which the real server does when it loads its authentication configuration; this app tells
it the settings' client CA, so the same client certificates pass the same handshake.
"""

from __future__ import annotations

from pathlib import Path

import falcon
import orjson

from proxy import tls
from proxy.settings import Settings

_DETAILS = "Re-index the search shards of the tenant and verify the replicas afterwards. " * 13


def document() -> bytes:
    """A CustomTask-shaped object of about 1.4 KB, serialized once."""
    return orjson.dumps(
        {
            "apiVersion": "search.task.example.example.com/v1",
            "kind": "CustomTask",
            "metadata": {
                "name": "constant",
                "namespace": "bench",
                "uid": "00000000-0000-4000-8000-000000000000",
                "resourceVersion": "1",
                "generation": 1,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"app": "search", "tier": "backend", "owner": "bench"},
            },
            "spec": {
                "priority": 5,
                "deadline": "2030-01-01T00:00:00Z",
                "details": _DETAILS,
                "taskState": "Pending",
            },
        }
    )


class Constant:
    """The sink: one prebuilt body for any GET path, nothing else."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        if req.method not in ("GET", "HEAD"):
            raise falcon.HTTPMethodNotAllowed(["GET", "HEAD"])
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


def create_app() -> falcon.App[falcon.Request, falcon.Response]:
    """What gunicorn loads in each worker: ``'bench.constant:create_app()'``."""
    tls.trust_client_cas(Path(Settings.from_env().client_ca_file).read_bytes())
    app = falcon.App()
    app.add_sink(Constant(document()), prefix="/")
    return app
