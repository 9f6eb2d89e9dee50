"""The sink for ``/apis/<group>/<version>/...``: find the kind and the verb's handler, decode
the body, hand the handler the request and its dependencies, and render what it returns."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import falcon

from handlers.api import GROUP, VERSION
from handlers.api.admission import NO_ADMISSION, Admission
from handlers.api.contract import NO_OPTIONS, ApiRequest, Deps, RelayResult, WatchResult
from handlers.api.errors import method_not_allowed, not_found_path
from handlers.api.params import write_options
from handlers.api.users import User
from handlers.registry import Served
from k8s.upstream import Upstream
from proxy import auditing, decoding, lifecycle, streaming
from proxy.deadline import Deadline
from proxy.negotiation import negotiate
from proxy.render import render
from proxy.requestinfo import RequestInfo
from proxy.settings import Settings
from proxy.storage import StoreHolder

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})


class Resources:
    """Dispatch to the verb module of a served kind."""

    def __init__(
        self,
        kinds: tuple[Served, ...],
        holder: StoreHolder,
        settings: Settings,
        upstream: Upstream | None,
        admission: Admission = NO_ADMISSION,
    ) -> None:
        self._by_plural = {served.kind.plural: served for served in kinds}  # routes, once
        self._holder = holder
        self._settings = settings
        self._upstream = upstream
        self._admission = admission
        self._made: Deps | None = None

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        info: RequestInfo = req.context.info
        served = self._served(info)
        kind = served.kind
        if kind.namespaced and info.namespace is None:
            if info.name:
                raise not_found_path()  # namespaced items live under /namespaces/<ns>/
            if info.verb not in ("list", "watch"):
                raise method_not_allowed()  # only reads span all namespaces
        # a resource without objects (the search) is read with get on its collection path
        verb = info.verb if kind.has_objects or info.verb != "list" else "get"
        handler = served.handler(verb, info.subresource)
        if handler is None:
            raise method_not_allowed()
        output = negotiate(
            req.get_header("Accept"), listing=verb == "list", plain=kind.plain is not None
        )
        body, content_type = None, ""
        if req.method in _BODY_METHODS:
            raw = decoding.read(req, self._settings.max_body_bytes)
            body = decoding.decode(req.content_type, raw, patch=req.method == "PATCH")
            content_type = decoding.media_type(req.content_type)
            auditing.request_body(req, body)
        user: User = req.context.user
        request = ApiRequest(
            kind,
            verb,
            info.namespace,
            info.name,
            req.context.query,
            body,
            user,
            subresource=info.subresource,
            content_type=content_type,
            authorize=functools.partial(_authorize_also, req.context.authorize, info),
            options=write_options(req.context.query, info.verb)
            if info.verb in _WRITES
            else NO_OPTIONS,
            user_agent=req.user_agent or "",
            annotate=req.context.annotations.__setitem__,
            deadline=_due(req),
            plain=output.form == "text",
        )
        result = handler(request, self._deps())
        resp.content_type = output.media_type
        if isinstance(result, WatchResult):
            resp.stream = streaming.carried(self._holder.fanout(), req.env, result, output, request)
            return
        if isinstance(result, RelayResult):
            resp.stream = streaming.relayed(result, output, request)
            return
        if info.verb in _WRITES:
            self._holder.written()
        resp.data = render(kind, result, output, request.param("includeObject"))
        status = getattr(result, "status", 200)
        if status != 200:  # falcon's default
            resp.status = falcon.code_to_http_status(status)
        for warning in getattr(result, "warnings", ()):
            resp.append_header("Warning", warning_header(warning))

    def _deps(self) -> Deps:
        """What handlers are given: made again only when the store is another one."""
        store = self._holder.get()
        deps = self._made
        if deps is None or deps.store is not store:
            deps = self._made = Deps(
                store,
                self._upstream,
                lifecycle.stopping,
                managed_fields=self._settings.managed_fields,
                admission=self._admission,
            )
        return deps

    def _served(self, info: RequestInfo) -> Served:
        served = self._by_plural.get(info.resource) if info.is_resource else None
        if (
            served is None
            or (info.group, info.version) != (GROUP, VERSION)
            or (info.subresource is not None and info.subresource not in served.subresources)
            or info.extra_parts
            or (info.namespace is not None and not served.kind.namespaced)
            or not _can_name(info.namespace)
            or not _can_name(info.name)
        ):
            raise not_found_path()
        return served


def warning_header(text: str) -> str:
    """An RFC 7234 warning (code 299, as kube's) carrying ``text``, which may hold what a
    client sent: quotes and backslashes escaped, control characters (which would end or
    corrupt the header) replaced, UTF-8 kept as its bytes."""
    printable = "".join(c if c.isprintable() else "\ufffd" for c in text)
    escaped = printable.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'.encode().decode("latin-1")


def _can_name(segment: str | None) -> bool:
    """Whether a path segment could be a namespace or an object's name at all: never with a
    control character or bytes that are not UTF-8 (decoded as U+FFFD). Such a path is a 404
    before any store sees it (PostgreSQL cannot even hold a NUL in text)."""
    return segment is None or (segment.isprintable() and "\ufffd" not in segment)


def _authorize_also(
    authorize: Callable[[RequestInfo], None],
    info: RequestInfo,
    verb: str,
    group: str | None = None,
    resource: str | None = None,
    namespace: str | None = None,
    *,
    name: str | None = None,
    subresource: str | None = None,
    path: str | None = None,
) -> None:
    """The request's own authorization for another verb, or for a resource of another group
    (its object ``name`` and ``subresource``) in the same namespace or in ``namespace``, or
    for a non-resource ``path``."""
    if path is not None:
        info = RequestInfo(path=path, verb=verb)
    elif resource is not None:
        info = dataclasses.replace(
            info,
            group=group or "",
            resource=resource,
            name=name or None,
            subresource=subresource or None,
            selected_name=None,
        )
    if namespace is not None:
        info = dataclasses.replace(info, namespace=namespace or None)
    authorize(dataclasses.replace(info, verb=verb))


def _due(req: falcon.Request) -> float | None:
    deadline: Deadline | None = getattr(req.context, "deadline", None)
    return deadline.at if deadline is not None else None
