"""Middleware run for every request: the request log, and the gate (RequestInfo, the request
deadline, authentication, the in-flight limit, authorization) before anything is dispatched."""

from __future__ import annotations

import functools
import os
import time
from urllib.parse import parse_qs

import falcon
import orjson

from handlers.api.errors import ApiError, timeout
from handlers.api.users import User
from proxy import authz, errors
from proxy.audit import audit_id
from proxy.auditing import Auditing
from proxy.authn import ANONYMOUS, Authenticator
from proxy.deadline import Deadline, RequestTimeout
from proxy.inflight import InFlightLimit, Release
from proxy.requestinfo import RequestInfo, parse

REQUEST_LOG_FROM = {"all": 0, "errors": 500, "none": 1000}
"""The least status code a request's line is written for, by ``APISERVER_REQUEST_LOG``."""


class RequestLog:
    """A request id in every response, and a JSON line on stdout for each request answered
    with at least ``least_code``: by default the server's errors only, as kube-apiserver
    writes its request lines (httplog) only at verbosity 3; the audit log is the record of
    every request."""

    def __init__(self, least_code: int = 0) -> None:
        self._least = least_code

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()
        req.context.request_id = audit_id(req.env)  # the aggregator's Audit-ID, or a new one
        req.context.annotations = {}  # audit annotations, as admission records them
        resp.set_header("Audit-Id", req.context.request_id)
        resp.set_header("X-Request-Id", req.context.request_id)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, succeeded: bool
    ) -> None:
        if resp.status_code < self._least:
            return
        info: RequestInfo | None = getattr(req.context, "info", None)
        user: User | None = getattr(req.context, "user", None)
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
        if req.context.annotations:
            line["annotations"] = req.context.annotations
        # stdout closed or full: the line is lost, not the request, as klog drops it (a try
        # costs nothing on this path every request takes; contextlib.suppress would)
        try:  # noqa: SIM105
            os.write(1, orjson.dumps(line) + b"\n")
        except OSError:
            pass


class Gate:
    """kube-apiserver's filters before a handler, in kube's order: RequestInfo, the request
    deadline, authentication, the audit log's first stage, the in-flight limit (so a request
    refused for load costs no review), authorization. Health paths need neither credentials
    nor a slot."""

    def __init__(
        self,
        authenticator: Authenticator,
        authorizer: authz.Authorizer,
        *,
        limit: InFlightLimit | None = None,
        timeout: RequestTimeout | None = None,
        audit: Auditing | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._authorizer = authorizer
        self._limit = limit
        self._timeout = timeout
        self._audit = audit

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        arrived = time.monotonic()
        query = (
            {k: v[0] for k, v in parse_qs(req.query_string, keep_blank_values=True).items()}
            if req.query_string
            else {}
        )
        info = parse(req.method, req.path, query)
        req.context.query = query
        req.context.info = info
        if self._timeout is not None:
            req.context.deadline = self._timeout.start(info, query, arrived)
        if info.path in authz.HEALTH_PATHS:
            req.context.user = ANONYMOUS
            return
        try:
            user = self._authenticator.authenticate(req.env)
        except ApiError:
            if self._audit is not None:
                self._audit.unauthenticated(req, info)
            raise
        req.context.user = user
        if self._audit is not None:
            self._audit.received(req, user, info)
        if self._limit is not None:
            try:
                req.context.release = self._limit.admit(info, user)
            except ApiError:
                req.context.terminated = 429  # refused in self-defense, as kube counts it
                raise
        decision = self._authorizer.authorize(user, info)
        req.context.decision = (decision.allowed, decision.reason)  # for the audit log
        if not decision.allowed:
            raise authz.forbidden_error(user, info, decision.reason)
        req.context.authorize = functools.partial(authz.authorize, self._authorizer, user)
        deadline: Deadline | None = getattr(req.context, "deadline", None)
        if deadline is not None and deadline.passed():  # reviews may have waited:
            req.context.terminated = 504  # no handler starts after the deadline
            raise timeout()
        req.context.passed = True

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, succeeded: bool
    ) -> None:
        # getattr, not Context.get: these run for every request
        release: Release | None = getattr(req.context, "release", None)
        if release is not None:
            release()
        deadline: Deadline | None = getattr(req.context, "deadline", None)
        if deadline is not None and resp.stream is None and deadline.passed():
            req.context.terminated = 504
            _replace_with_timeout(resp)


def _replace_with_timeout(resp: falcon.Response) -> None:
    """Drop a late answer and its headers (but the request id) for kube's 504."""
    for name in resp.headers:
        if name.lower() != "x-request-id":
            resp.delete_header(name)
    resp.text = None
    resp.media = None
    errors.answer(resp, timeout())
