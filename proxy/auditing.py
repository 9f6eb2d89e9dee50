"""The audit log of the requests, as kube-apiserver's audit filter (``WithAudit``) writes it:
the policy decides each request's level once authentication has said who asks; the event
goes out at RequestReceived, at ResponseStarted for a watch, and at ResponseComplete (or
Panic), each stage unless the policy omits it. Annotations are the authorization decision
and its reason, and what admission recorded. No policy, no audit log, as kube.

The gate calls :meth:`Auditing.received` between authentication and the in-flight limit, as
kube orders its filters; as middleware, it completes the event when the response is ready;
the dispatcher hands it the decoded body of a write (:func:`request_body`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, cast

import falcon
import orjson

from handlers.api.users import User
from proxy.audit import (
    AuditEvent,
    Level,
    Policy,
    Sink,
    request_uri,
    sink_for,
    source_ips,
    user_agent,
)
from proxy.outlets import observed
from proxy.requestinfo import RequestInfo
from proxy.settings import Settings

NOBODY = User("")  # before authentication: no rule of users or groups matches
DECISION = "authorization.k8s.io/decision"
REASON = "authorization.k8s.io/reason"


def from_settings(settings: Settings) -> Auditing | None:
    """kube's ``--audit-policy-file`` and ``--audit-log-*``: no policy, no audit log."""
    if not settings.audit_policy_file:
        return None
    sink = sink_for(
        settings.audit_log_path,
        max_size_mb=settings.audit_log_maxsize or 100,  # lumberjack's reading of kube's 0
        max_backups=settings.audit_log_maxbackup,
        max_age_days=settings.audit_log_maxage,
    )
    return Auditing(Policy.from_file(settings.audit_policy_file), sink)


class Auditing:
    """The audit filter for one policy and one sink."""

    def __init__(self, policy: Policy, sink: Sink) -> None:
        self._policy = policy
        self._sink = sink

    def received(self, req: falcon.Request, user: User, info: RequestInfo) -> None:
        """The request is authenticated: decide its level, write RequestReceived."""
        event = self._begin(req, user, info)
        if event is not None:
            self._write(event.stage("RequestReceived"))

    def unauthenticated(self, req: falcon.Request, info: RequestInfo) -> None:
        """A credential was presented and failed (kube's ``WithFailedAuthenticationAudit``):
        an event of nobody, written once, at ResponseStarted, with the 401."""
        event = self._begin(req, NOBODY, info)
        if event is not None:
            req.context.audit_stage = "ResponseStarted"

    def _begin(self, req: falcon.Request, user: User, info: RequestInfo) -> AuditEvent | None:
        config = self._policy.evaluate(user, info)
        if config.level is Level.NONE:
            return None
        event = AuditEvent(
            config,
            audit_id=req.context.request_id,
            user=user,
            info=info,
            request_uri=request_uri(req.env),
            source_ips=source_ips(req.env),
            user_agent=user_agent(req.env),
            received=time.time() - (time.perf_counter() - req.context.started),
        )
        req.context.audit = event
        return event

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, succeeded: bool
    ) -> None:
        """The response is ready: its status, its body at RequestResponse, the annotations;
        then ResponseComplete, or for a watch ResponseStarted and ResponseComplete at its end."""
        event: AuditEvent | None = getattr(req.context, "audit", None)
        if event is None:
            return
        decision: tuple[bool, str] | None = getattr(req.context, "decision", None)
        if decision is not None:
            event.add_annotation(DECISION, "allow" if decision[0] else "forbid")
            event.add_annotation(REASON, decision[1])
        for key, value in req.context.annotations.items():
            event.add_annotation(key, value)
        panic: str | None = getattr(req.context, "panic", None)
        if panic is not None:
            self._write(event.panicked(panic))
            return
        code = resp.status_code
        body = _json(resp) if code >= 400 or event.level is Level.REQUEST_RESPONSE else None
        if body is None:
            event.log_response_code(code)
        else:
            event.log_response_object(body, code=code)
        if resp.stream is None:
            self._write(event.stage(getattr(req.context, "audit_stage", "ResponseComplete")))
            return
        self._write(event.stage("ResponseStarted"))
        stream = cast(Iterable[bytes], resp.stream)  # every stream here is a generator
        resp.stream = observed(stream, lambda: self._write(event.stage("ResponseComplete")))

    def _write(self, found: dict[str, Any] | None) -> None:
        if found is not None:
            self._sink.write(found)


def request_body(req: falcon.Request, body: Any) -> None:
    """The decoded body of a write, for the audit event (a patch as sent, an object whose
    metadata completes the event's objectRef)."""
    event: AuditEvent | None = getattr(req.context, "audit", None)
    if event is None or body is None:
        return
    if req.method == "PATCH":
        event.log_request_patch(body)
    elif isinstance(body, dict):
        event.log_request_object(body)


def _json(resp: falcon.Response) -> Any:
    """The response's JSON body (a Status for an error), if it has one."""
    data = resp.data
    if not data or not (resp.content_type or "").startswith("application/json"):
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
