"""Middleware run for every request: the request log, and the gate (RequestInfo,
authentication, authorization) before anything is dispatched."""

from __future__ import annotations

import functools
import os
import time
import uuid
from urllib.parse import parse_qs

import falcon
import orjson

from handlers.api.contract import User
from proxy import authz
from proxy.authn import ANONYMOUS, Authenticator
from proxy.requestinfo import RequestInfo, parse


class RequestLog:
    """One JSON line per request on stdout, and a request id in the response."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()
        req.context.request_id = uuid.uuid4().hex
        resp.set_header("X-Request-Id", req.context.request_id)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, succeeded: bool
    ) -> None:
        info: RequestInfo | None = req.context.get("info")
        user: User | None = req.context.get("user")
        line = {
            "ts": time.time(),
            "requestId": req.context.request_id,
            "user": user.name if user else "",
            "groups": list(user.groups) if user else [],
            "method": req.method,
            "path": req.path,
            "verb": info.verb if info else "",
            "resource": info.resource if info else "",
            "namespace": (info.namespace or "") if info else "",
            "name": (info.name or "") if info else "",
            "code": resp.status_code,
            "latencyMs": round((time.perf_counter() - req.context.started) * 1000, 3),
        }
        os.write(1, orjson.dumps(line) + b"\n")


class Gate:
    """RequestInfo, authentication, then authorization, for every request."""

    def __init__(self, authenticator: Authenticator, authorizer: authz.Authorizer) -> None:
        self._authenticator = authenticator
        self._authorizer = authorizer

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = (
            {k: v[0] for k, v in parse_qs(req.query_string, keep_blank_values=True).items()}
            if req.query_string
            else {}
        )
        info = parse(req.method, req.path, query)
        req.context.query = query
        req.context.info = info
        if info.path in authz.HEALTH_PATHS:
            req.context.user = ANONYMOUS
            return
        user = self._authenticator.authenticate(req.env)
        req.context.user = user
        authz.authorize(self._authorizer, user, info)
        req.context.authorize = functools.partial(authz.authorize, self._authorizer, user)
