"""The documents served from memory: health checks, version, discovery and OpenAPI.

Each is built once at start (from the registry of kinds) and answered with an ETag, so the
aggregator's periodic fetches cost a 304."""

from __future__ import annotations

import logging

import falcon

from handlers.api import GROUP
from handlers.api.errors import ApiError, not_found_path
from k8s import health
from proxy.discovery import Discovery, Document
from proxy.negotiation import JSON, parse_accept
from proxy.openapi import V2_PROTOBUF, OpenAPI

log = logging.getLogger("apiserver")


def send(req: falcon.Request, resp: falcon.Response, doc: Document, etag: str = "") -> None:
    """Answer a prebuilt document, with ETag and If-None-Match -> 304."""
    etag = etag or doc.etag
    resp.set_header("ETag", etag)
    if req.get_header("If-None-Match") == etag:
        resp.status = falcon.HTTP_304
        resp.content_type = None
        return
    resp.content_type = doc.content_type
    resp.data = doc.body


class Health:
    """A health endpoint as kube's healthz handler answers it: ``ok``, or every check's line
    (``?verbose``, or whenever one fails, then a 500). A failing check's reason is withheld
    from the answer, which anyone may read, and logged; ``?exclude=<name>`` skips a check;
    ``/<endpoint>/<name>`` runs one check alone and says why it fails (it is authorized as
    any other path)."""

    def __init__(self, name: str, checks: dict[str, health.Check]) -> None:
        self._name = name
        self._checks: dict[str, health.Check] = {"ping": lambda: "", **checks}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/plain; charset=utf-8"
        resp.set_header("X-Content-Type-Options", "nosniff")
        found = health.answer(
            self._name,
            self._checks,
            exclude=req.get_param_as_list("exclude") or (),
            verbose="verbose" in req.params,
        )
        if found.failed:
            failed, reasons = ",".join(found.failed), "\n".join(found.reasons)
            log.warning("%s check failed: %s\n%s", failed, self._name, reasons)
            resp.status = falcon.HTTP_500
        resp.text = found.text

    def on_get_check(self, req: falcon.Request, resp: falcon.Response, check: str) -> None:
        """One check alone: ``ok``, or 500 with its reason."""
        run = self._checks.get(check)
        if run is None:
            raise not_found_path()
        resp.content_type = "text/plain; charset=utf-8"
        resp.set_header("X-Content-Type-Options", "nosniff")
        why = run()
        if why:
            resp.status = falcon.HTTP_500
            resp.text = f"internal server error: {why}\n"
        else:
            resp.text = "ok"

    on_head = on_get


class Static:
    """A prebuilt JSON document."""

    def __init__(self, doc: Document) -> None:
        self._doc = doc

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(req, resp, self._doc)


class Apis:
    """``/apis``: aggregated discovery or the legacy group list, by Accept."""

    def __init__(self, discovery: Discovery) -> None:
        self._discovery = discovery

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(req, resp, self._discovery.apis(req.get_header("Accept")))


class ApiGroup:
    """``/apis/<group>``: our APIGroup; any other group is not ours."""

    def __init__(self, discovery: Discovery) -> None:
        self._discovery = discovery

    def on_get(self, req: falcon.Request, resp: falcon.Response, group: str) -> None:
        if group != GROUP:
            raise not_found_path()
        send(req, resp, self._discovery.group)


class NotServed:
    """``/api``: this server serves only ``/apis`` (D4)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise not_found_path()


class OpenAPIv2:
    """``/openapi/v2``: JSON with an ETag; the protobuf Accept gets an empty message (O2)."""

    def __init__(self, docs: OpenAPI) -> None:
        self._doc = Document(docs.v2)
        self._etag = docs.v2_etag

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        for r in parse_accept(req.get_header("Accept")):
            if "protobuf" in r.type:
                resp.content_type = V2_PROTOBUF
                resp.data = b""
                return
            if r.type in (JSON, "*/*", "application/*"):
                break
        send(req, resp, self._doc, self._etag)


class OpenAPIv3:
    """``/openapi/v3`` and its group-version document; never redirects on a stale hash (O3)."""

    def __init__(self, docs: OpenAPI) -> None:
        self._docs = docs

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = JSON
        resp.data = self._docs.v3_index

    def on_get_group_version(self, req: falcon.Request, resp: falcon.Response) -> None:
        ranges = parse_accept(req.get_header("Accept"))
        if ranges and all("protobuf" in r.type for r in ranges):
            raise ApiError(406, "NotAcceptable", "only application/json is served")
        if req.get_param("hash") == self._docs.v3_hash:
            resp.set_header("Cache-Control", "public, immutable")
        else:
            resp.set_header("Cache-Control", "no-cache, private")
        send(req, resp, Document(self._docs.v3), f'"{self._docs.v3_hash}"')
