"""kube's audit events (``audit.k8s.io/v1`` ``Event``), built in kube's JSON shape.

One :class:`AuditEvent` follows one request, as kube's ``AuditContext`` does: the request's
metadata when it arrives, its object and the response as the handler logs them, annotations
on the way; :meth:`AuditEvent.stage` then answers the event of a stage as kube's log backend
would write it. Empty fields are left out where kube's ``omitempty`` leaves them out, and the
level decides what is kept: Metadata keeps no body, Request the request's, RequestResponse
both. Where kube reads a Go ``http.Request`` these helpers read a WSGI environ.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import random
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from handlers.api.users import User
from proxy.audit.policy import (
    API_VERSION,
    PANIC,
    REQUEST_RECEIVED,
    RESPONSE_COMPLETE,
    STAGES,
    Level,
    RequestConfig,
)
from proxy.requestinfo import RequestInfo

log = logging.getLogger("apiserver.audit")

MAX_USER_AGENT = 1024
"""kube truncates longer User-Agents, marking them."""
TRUNCATED = "...TRUNCATED"

_OBJECT_REF_FIELDS = (
    "resource",
    "namespace",
    "name",
    "uid",
    "apiGroup",
    "apiVersion",
    "resourceVersion",
    "subresource",
)
"""ObjectReference's fields in kube's order; every one is omitted when empty."""


MAX_AUDIT_ID = 256


def micro_time(ts: float) -> str:
    """``metav1.MicroTime`` of a wall-clock time: UTC, to the microsecond."""
    micros = round(ts * 1_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{_second(seconds)}.{fraction:06d}Z"


@functools.lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    """The formatted second (every event of a second shares it)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


# --- the request, as kube reads it ---------------------------------------------------------

_V4_MAPPED = bytes(10) + b"\xff\xff"


def _parse_ip(text: str) -> str | None:
    """Go's ``net.ParseIP``, then its ``String()``: no zones, the canonical form, and an
    IPv4-mapped IPv6 address as the IPv4 one (the C parser: ``ipaddress`` costs ten times
    as much, and every audited request reads its addresses)."""
    if not text or "%" in text:
        return None
    try:
        if ":" not in text:
            return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text))
        packed = socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        return None
    if packed[:12] == _V4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


def _remote_ip(remote: str) -> str | None:
    """The connection's address, as ``host:port`` (``[v6]:port``) or as the address alone."""
    if remote.startswith("["):
        host, sep, _ = remote[1:].partition("]:")
        return _parse_ip(host) if sep else _parse_ip(remote)
    if remote.count(":") == 1:
        return _parse_ip(remote.partition(":")[0])
    return _parse_ip(remote)


def source_ips(environ: Mapping[str, Any]) -> list[str]:
    """kube's ``SourceIPs``: X-Forwarded-For's addresses, then X-Real-Ip unless already
    there, then the connection's address unless it is the last one already. Only the last
    cannot be made up by the client."""
    ips: list[str] = []
    forwarded = str(environ.get("HTTP_X_FORWARDED_FOR", ""))
    if forwarded:
        for part in forwarded.split(","):
            if (ip := _parse_ip(part.strip())) is not None:
                ips.append(ip)
    real = _parse_ip(str(environ.get("HTTP_X_REAL_IP", "")))
    if real is not None and real not in ips:
        ips.append(real)
    remote = _remote_ip(str(environ.get("REMOTE_ADDR", "")))
    if remote is not None and (not ips or ips[-1] != remote):
        ips.append(remote)
    return ips


def request_uri(environ: Mapping[str, Any]) -> str:
    """Go's ``URL.RequestURI()``: the path and query as the client sent them."""
    raw = str(environ.get("RAW_URI", ""))
    if raw.startswith("/"):
        return raw
    if raw:
        parts = urlsplit(raw)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    path = quote(str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "")))
    query = str(environ.get("QUERY_STRING", ""))
    return path + (f"?{query}" if query else "")


def audit_id(environ: Mapping[str, Any]) -> str:
    """The caller's ``Audit-ID`` (the aggregator sends the one it logged), or a new one;
    kube echoes it in the response's ``Audit-Id`` header. Unlike kube, one longer than
    :data:`MAX_AUDIT_ID` is replaced: every log line and response would carry it."""
    given = str(environ.get("HTTP_AUDIT_ID", ""))
    return given if 0 < len(given) <= MAX_AUDIT_ID else _uuid4()


def _uuid4() -> str:
    """A new id in the form of a random (version 4) UUID, at a tenth of
    ``str(uuid.uuid4())``: see :class:`_Ids`."""
    return f"{_ids.prefix}{next(_ids.count) & 0xFFFFFFFFFFFF:012x}"


class _Ids:
    """Random bits drawn once per process (again in a forked child: ``random`` is reseeded
    there first) and a count in the last twelve digits. An audit id must be unique, not
    secret; ``os.urandom`` for each would also let go of Python's lock for its system call,
    which in a worker serving several connections hands the lock to another thread and back
    on every request."""

    def __init__(self) -> None:
        self.prefix = ""
        self.count = itertools.count()
        self.draw()

    def draw(self) -> None:
        h = f"{random.getrandbits(80):020x}"
        variant = "89ab"[int(h[12], 16) & 3]
        self.prefix = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-"
        self.count = itertools.count(random.getrandbits(40))


_ids = _Ids()
os.register_at_fork(after_in_child=_ids.draw)


def user_agent(environ: Mapping[str, Any]) -> str:
    """The client's User-Agent, truncated as kube does past 1024 characters."""
    agent = str(environ.get("HTTP_USER_AGENT", ""))
    return agent[:MAX_USER_AGENT] + TRUNCATED if len(agent) > MAX_USER_AGENT else agent


# --- bodies --------------------------------------------------------------------------------


def _without_managed_fields(obj: dict[str, Any]) -> None:
    """kube's ``copyWithoutManagedFields``, on a copy that is ours: the object's, each list
    item's and each Table row's ``metadata.managedFields``."""
    _drop_managed_fields(obj)
    items = obj.get("items")
    if isinstance(items, list):
        for item in items:
            _drop_managed_fields(item)
    rows = obj.get("rows")
    if obj.get("kind") == "Table" and isinstance(rows, list):
        for row in rows:
            if isinstance(row, dict):
                _drop_managed_fields(row.get("object"))


def _drop_managed_fields(obj: object) -> None:
    if isinstance(obj, dict) and isinstance(meta := obj.get("metadata"), dict):
        meta.pop("managedFields", None)


def _snapshot(obj: Any, *, omit_managed_fields: bool) -> Any:
    """The body as it is now (kube encodes it when logged): later changes by admission or
    defaulting must not show. None when it is not JSON."""
    try:
        copy = orjson.loads(orjson.dumps(obj))
    except TypeError as ex:
        log.error("audit: encoding of an object failed: %s", ex)
        return None
    if omit_managed_fields and isinstance(copy, dict):
        _without_managed_fields(copy)
    return copy


def _is_status(obj: Any) -> bool:
    return isinstance(obj, Mapping) and obj.get("kind") == "Status"


def _status_copy(status: Mapping[str, Any]) -> dict[str, Any]:
    """kube copies a Status's bounded fields only: status, message, reason, details, code
    (``metadata`` is a struct, so Go always writes it; the rest are omitted when empty)."""
    copy: dict[str, Any] = {"metadata": {}}
    for key in ("status", "message", "reason"):
        if value := status.get(key):
            copy[key] = value
    if status.get("details") is not None:
        copy["details"] = status["details"]
    if status.get("code"):
        copy["code"] = status["code"]
    return copy


def _user_info(user: User) -> dict[str, Any]:
    """``authentication/v1`` ``UserInfo``, empty fields left out."""
    info: dict[str, Any] = {}
    if user.name:
        info["username"] = user.name
    if user.uid:
        info["uid"] = user.uid
    if user.groups:
        info["groups"] = list(user.groups)
    if user.extra:
        info["extra"] = {key: list(user.extra[key]) for key in sorted(user.extra)}
    return info


def _object_ref(info: RequestInfo) -> dict[str, str] | None:
    """What a resource request addresses; a non-resource request has none."""
    if not info.is_resource:
        return None
    return {
        "resource": info.resource,
        "namespace": info.namespace or "",
        "name": info.authorized_name,
        "apiGroup": info.group,
        "apiVersion": info.version,
        "subresource": info.subresource or "",
    }


class AuditEvent:
    """The audit event of one request, filled in as it is served; not shared by threads."""

    __slots__ = (
        "_annotations",
        "_base",
        "_level",
        "_object_ref",
        "_omit_managed_fields",
        "_omit_stages",
        "_received",
        "_request_object",
        "_response_object",
        "_response_status",
    )

    def __init__(
        self,
        config: RequestConfig,
        *,
        audit_id: str,
        user: User,
        info: RequestInfo,
        request_uri: str,
        source_ips: list[str],
        user_agent: str,
        received: float,
    ) -> None:
        self._level = config.level
        self._omit_stages = config.omit_stages
        self._omit_managed_fields = config.omit_managed_fields
        self._received = micro_time(received)
        self._annotations: dict[str, str] = {}
        self._request_object: Any = None
        self._response_object: Any = None
        self._response_status: dict[str, Any] | None = None
        self._object_ref = _object_ref(info) if config.level is not Level.NONE else None
        self._base: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": API_VERSION,
            "level": str(config.level),
            "auditID": audit_id,
            "stage": "",
            "requestURI": request_uri,
            "verb": info.verb,
            "user": _user_info(user) if config.level is not Level.NONE else {},
        }
        if source_ips:
            self._base["sourceIPs"] = list(source_ips)
        if user_agent:
            self._base["userAgent"] = user_agent

    @property
    def level(self) -> Level:
        return self._level

    @property
    def enabled(self) -> bool:
        """Level None writes nothing, and nothing needs to be logged."""
        return self._level is not Level.NONE

    @property
    def audit_id(self) -> str:
        return str(self._base["auditID"])

    def add_annotation(self, key: str, value: str) -> None:
        """kube's ``AddAuditAnnotation``: the first value set for a key stays."""
        if not self.enabled:
            return
        current = self._annotations.setdefault(key, value)
        if current != value:
            log.warning(
                "Failed to set annotations[%r] to %r for audit:%r, it has already been set to %r",
                key,
                value,
                self.audit_id,
                current,
            )

    def log_request_object(self, obj: Mapping[str, Any]) -> None:
        """kube's ``LogRequestObject``: the object's metadata completes objectRef (at
        Metadata and above); the body itself is kept from level Request."""
        if not self.enabled:
            return
        self._complete_object_ref(obj.get("metadata") if isinstance(obj, Mapping) else None)
        if self._level.at_least(Level.REQUEST):
            self._request_object = _snapshot(obj, omit_managed_fields=self._omit_managed_fields)

    def _complete_object_ref(self, meta: object) -> None:
        ref = self._object_ref if self._object_ref is not None else {}
        self._object_ref = ref
        if not isinstance(meta, Mapping):
            return
        for field in ("namespace", "name", "uid", "resourceVersion"):
            if not ref.get(field) and isinstance(value := meta.get(field), str):
                ref[field] = value

    def log_request_patch(self, patch: Any) -> None:
        """kube's ``LogRequestPatch``: a PATCH's body as sent (a JSON patch is a list)."""
        if self._level.at_least(Level.REQUEST):
            self._request_object = _snapshot(patch, omit_managed_fields=False)

    def log_response_object(self, obj: Any, *, code: int) -> None:
        """kube's ``LogResponseObject`` then the response's status code: a Status answer
        gives responseStatus its bounded fields; the body is kept at RequestResponse."""
        if not self.enabled:
            return
        if _is_status(obj):
            self._response_status = _status_copy(obj)
        if self._level.at_least(Level.REQUEST_RESPONSE):
            self._response_object = _snapshot(obj, omit_managed_fields=self._omit_managed_fields)
        self.log_response_code(code)

    def log_response_code(self, code: int) -> None:
        """The status code as the response starts (kube's response writer records it)."""
        if not self.enabled:
            return
        if self._response_status is None:
            self._response_status = {"metadata": {}}
        self._response_status["code"] = code

    def stage(self, name: str, now: float | None = None) -> dict[str, Any] | None:
        """The event of stage ``name`` as written to the log, or None when this request
        is not audited or the stage is omitted. A request that ended with no response
        started is completed as kube does it: 200, "Connection closed early"."""
        if name not in STAGES:
            raise ValueError(f"unknown audit stage {name!r}")
        if name == RESPONSE_COMPLETE and self._response_status is None and self.enabled:
            self._response_status = {
                "metadata": {},
                "status": "Success",
                "message": "Connection closed early",
                "code": 200,
            }
        if not self.enabled or name in self._omit_stages:
            return None
        if name == REQUEST_RECEIVED:
            return self._event(name, self._received)
        return self._event(name, micro_time(time.time() if now is None else now))

    def panicked(self, error: object, now: float | None = None) -> dict[str, Any] | None:
        """The Panic stage's event, its responseStatus the 500 kube's filter records."""
        if self.enabled:
            self._response_status = {
                "metadata": {},
                "status": "Failure",
                "message": f"APIServer panic'd: {error}",
                "reason": "InternalError",
                "code": 500,
            }
        return self.stage(PANIC, now)

    def _event(self, stage: str, stamp: str) -> dict[str, Any]:
        event: dict[str, Any] = {**self._base, "stage": stage}
        if self._object_ref is not None:
            ref = self._object_ref
            event["objectRef"] = {f: ref[f] for f in _OBJECT_REF_FIELDS if ref.get(f)}
        if self._response_status is not None:
            event["responseStatus"] = dict(self._response_status)
        if self._request_object is not None:
            event["requestObject"] = self._request_object
        if self._response_object is not None:
            event["responseObject"] = self._response_object
        event["requestReceivedTimestamp"] = self._received
        event["stageTimestamp"] = stamp
        if self._annotations:
            event["annotations"] = dict(sorted(self._annotations.items()))
        return event
