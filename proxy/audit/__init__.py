"""kube-apiserver's audit log, as a library of its own.

``policy`` reads an ``audit.k8s.io/v1`` Policy and decides each request's level and omitted
stages (kube's ``pkg/audit/policy``); ``events`` builds the ``audit.k8s.io/v1`` Events of a
request in kube's JSON shape (``pkg/audit``, ``endpoints/filters/audit.go``); ``sink`` writes
them as JSON lines to stdout or to a file rotated as ``--audit-log-max*`` say, shared safely
by every worker process (``plugin/pkg/audit/log`` over lumberjack). Nothing here knows the
web framework: the request pipeline hands it a user, a RequestInfo and a WSGI environ.
"""

from __future__ import annotations

from proxy.audit.events import AuditEvent, audit_id, request_uri, source_ips, user_agent
from proxy.audit.policy import STAGES, Level, Policy, PolicyError, RequestConfig
from proxy.audit.sink import FileSink, Sink, StdoutSink, sink_for

__all__ = [
    "STAGES",
    "AuditEvent",
    "FileSink",
    "Level",
    "Policy",
    "PolicyError",
    "RequestConfig",
    "Sink",
    "StdoutSink",
    "audit_id",
    "request_uri",
    "sink_for",
    "source_ips",
    "user_agent",
]
