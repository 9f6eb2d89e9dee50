"""The Falcon application: discovery, OpenAPI, health, and dispatch to the verb handlers.

``create_app()`` is what gunicorn loads in every worker. Each request is parsed into a
RequestInfo, authenticated, authorized, negotiated, dispatched to
``handlers/<resource>/<verb>.py`` and rendered; every error leaves as a ``metav1.Status``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import falcon
import orjson

from handlers import kinds
from handlers.contract import (
    ApiRequest,
    Deps,
    RelayResult,
    Upstream,
    User,
    WatchEvent,
    WatchResult,
)
from handlers.errors import (
    GROUP,
    GROUP_VERSION,
    VERSION,
    ApiError,
    bad_request,
    internal_error,
    method_not_allowed,
    not_found_path,
    request_entity_too_large,
    service_unavailable,
)
from k8s.client import Cluster, ClusterError
from k8s.events import TaskEvents
from k8s.reviews import authentication_configmap, subject_access_review, token_review
from proxy import authz, lifecycle
from proxy.authconfig import AuthConfig, AuthConfigSource, from_configmap, from_settings
from proxy.authn import ANONYMOUS, Authenticator, TokenReviewer
from proxy.discovery import Discovery, Document
from proxy.fanout import FanOut
from proxy.negotiation import JSON, Output, decode_body, media_type, negotiate, parse_accept
from proxy.openapi import V2_PROTOBUF, OpenAPI
from proxy.outlets import outlet_for
from proxy.render import INCLUDE_OBJECT, render, watch_event
from proxy.requestinfo import RequestInfo, parse
from proxy.reviewcache import ReviewCache
from proxy.settings import Settings
from store import Store
from store.compactor import start_compactor
from store.sqlite import SQLiteStore

log = logging.getLogger("apiserver")

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def open_store(settings: Settings) -> Store:
    """PostgreSQL when a URL is set (several pods), else the embedded SQLite file."""
    if settings.database_url:
        from store.postgres import PostgresStore

        return PostgresStore(settings.database_url)
    return SQLiteStore(settings.sqlite_path)


class StoreHolder:
    """Opens the store on first need and remembers why it could not, for ``/readyz``."""

    def __init__(self, settings: Settings, store: Store | None) -> None:
        self._settings = settings
        self._store = store
        self._fanout: FanOut | None = None
        self._error = ""
        self._lock = threading.Lock()

    def get(self) -> Store:
        """The open store; 503 while it cannot be opened."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    try:
                        self._store = open_store(self._settings)
                        start_compactor(self._store)
                    except Exception as ex:
                        self._error = str(ex)
                        log.warning("store not ready: %s", ex)
                        raise service_unavailable(f"the store is not ready: {ex}") from None
        return self._store

    def fanout(self) -> FanOut:
        """This process's watch fan-out, started on the first watch."""
        if self._fanout is None:
            store = self.get()
            with self._lock:
                if self._fanout is None:
                    threads = self._settings.threads
                    self._fanout = FanOut(
                        store,
                        lifecycle.stopping,
                        max_watches=threads - max(8, threads // 8),  # the rest: short requests
                        bookmark_seconds=self._settings.watch_bookmark_seconds,
                    )
        return self._fanout

    def written(self) -> None:
        """A write committed here: this process's watches need not wait for the next tick."""
        if self._fanout is not None:
            self._fanout.poke()

    def check(self) -> str:
        """Empty when the store is open, else the reason it is not."""
        try:
            self.get()
        except ApiError:
            return self._error or "not open"
        return ""


def _send(req: falcon.Request, resp: falcon.Response, doc: Document, etag: str = "") -> None:
    """Answer a prebuilt document, with ETag and If-None-Match -> 304."""
    etag = etag or doc.etag
    resp.set_header("ETag", etag)
    if req.get_header("If-None-Match") == etag:
        resp.status = falcon.HTTP_304
        resp.content_type = None
        return
    resp.content_type = doc.content_type
    resp.data = doc.body


class RequestLog:
    """Middleware: one JSON line per request on stdout, and a request id in the response."""

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
    """Middleware: RequestInfo, authentication, then authorization, for every request."""

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


class Health:
    """``/healthz`` and ``/livez`` answer while the process runs; ``/readyz`` runs the checks."""

    def __init__(self, checks: dict[str, Callable[[], str]]) -> None:
        self._checks = checks

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/plain; charset=utf-8"
        results = [("ping", ""), *((name, check()) for name, check in self._checks.items())]
        if not any(why for _, why in results):
            resp.text = "ok"
            return
        lines = [f"[-]{n} failed: {why}" if why else f"[+]{n} ok" for n, why in results]
        resp.status = falcon.HTTP_500
        resp.text = "\n".join([*lines, f"{req.path.strip('/')} check failed"]) + "\n"

    on_head = on_get


class Static:
    """A prebuilt JSON document."""

    def __init__(self, doc: Document) -> None:
        self._doc = doc

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _send(req, resp, self._doc)


class Apis:
    """``/apis``: aggregated discovery or the legacy group list, by Accept."""

    def __init__(self, discovery: Discovery) -> None:
        self._discovery = discovery

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _send(req, resp, self._discovery.apis(req.get_header("Accept")))


class ApiGroup:
    """``/apis/<group>``: our APIGroup; any other group is not ours."""

    def __init__(self, discovery: Discovery) -> None:
        self._discovery = discovery

    def on_get(self, req: falcon.Request, resp: falcon.Response, group: str) -> None:
        if group != GROUP:
            raise not_found_path()
        _send(req, resp, self._discovery.group)


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
        _send(req, resp, self._doc, self._etag)


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
        _send(req, resp, Document(self._docs.v3), f'"{self._docs.v3_hash}"')


class Resources:
    """The sink for ``/apis/<group>/<version>/...``: dispatch to the kind's verb module."""

    def __init__(self, holder: StoreHolder, settings: Settings, upstream: Upstream | None) -> None:
        self._holder = holder
        self._settings = settings
        self._upstream = upstream

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        info: RequestInfo = req.context.info
        kind = self._kind(info)
        if kind.namespaced and info.namespace is None:
            if info.name:
                raise not_found_path()  # namespaced items live under /namespaces/<ns>/
            if info.verb not in ("list", "watch"):
                raise method_not_allowed()  # only reads span all namespaces
        verbs = kind.subresources[info.subresource] if info.subresource else kind.handlers
        handler = verbs.get(info.verb)
        if handler is None:
            raise method_not_allowed()
        output = negotiate(req.get_header("Accept"), listing=info.verb == "list")
        body = None
        if req.method in _BODY_METHODS:
            body = decode_body(req.content_type, self._read(req), patch=req.method == "PATCH")
        user: User = req.context.user
        request = ApiRequest(
            kind,
            info.verb,
            info.namespace,
            info.name,
            req.context.query,
            body,
            user,
            subresource=info.subresource,
            content_type=media_type(req.content_type),
            authorize=functools.partial(_authorize_also, req.context.authorize, info),
        )
        deps = Deps(self._holder.get(), self._upstream, lifecycle.stopping)
        result = handler(request, deps)
        resp.content_type = output.media_type
        if isinstance(result, WatchResult):
            resp.stream = _watch(self._holder.fanout(), req.env, result, output, request)
            return
        if isinstance(result, RelayResult):
            resp.stream = _relay(result, output, request)
            return
        if info.verb in _WRITES:
            self._holder.written()
        resp.data = render(kind, result, output, request.param("includeObject"))
        status = getattr(result, "status", 200)
        resp.status = falcon.code_to_http_status(status)
        for warning in getattr(result, "warnings", ()):
            escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
            resp.append_header("Warning", f'299 - "{escaped}"')

    def _kind(self, info: RequestInfo) -> kinds.Kind:
        kind = kinds.find(info.resource) if info.is_resource else None
        if (
            kind is None
            or (info.group, info.version) != (GROUP, VERSION)
            or (info.subresource is not None and info.subresource not in kind.subresources)
            or info.extra_parts
            or (info.namespace is not None and not kind.namespaced)
        ):
            raise not_found_path()
        return kind

    def _read(self, req: falcon.Request) -> bytes:
        limit = self._settings.max_body_bytes
        data: bytes = req.stream.read(limit + 1)
        if len(data) > limit:
            raise request_entity_too_large(limit)
        return data


def _relay(result: RelayResult, output: Output, request: ApiRequest) -> Iterator[bytes]:
    """A watch relayed from the cluster: every event from this request's thread."""
    render = _renderer(request, output)
    return _body(result.events, render, lambda first: iter(()), result.events.close)


def _renderer(request: ApiRequest, output: Output) -> Callable[[WatchEvent, bool], bytes]:
    """How each event of a watch is written (400 for a bad includeObject, before streaming)."""
    include = request.param("includeObject")
    if include not in INCLUDE_OBJECT:
        raise bad_request(f'invalid includeObject value "{include}"')
    return functools.partial(watch_event, request.kind, output=output, include=include)


def _authorize_also(
    authorize: Callable[[RequestInfo], None],
    info: RequestInfo,
    verb: str,
    group: str | None = None,
    resource: str | None = None,
) -> None:
    """The request's own authorization for another verb, or for a resource of another group
    in the same namespace."""
    if resource is not None:
        info = dataclasses.replace(
            info,
            group=group or "",
            resource=resource,
            name=None,
            subresource=None,
            selected_name=None,
        )
    authorize(dataclasses.replace(info, verb=verb))


def _watch(
    fanout: FanOut,
    environ: dict[str, Any],
    result: WatchResult,
    output: Output,
    request: ApiRequest,
) -> Iterator[bytes]:
    """Subscribe, read the starting state (errors still become a Status), send it from this
    thread, then hand the watch to the fan-out."""
    render = _renderer(request, output)
    watch = fanout.subscribe(result.follower)
    try:
        initial = result.begin()
    except BaseException:
        fanout.cancel(watch)
        raise

    def live(first: bool) -> Iterator[bytes]:
        if watch.follower.expired:
            return iter(())
        outlet = outlet_for(environ)
        fanout.carry(watch, outlet, render, (output, request.param("includeObject")), first=first)
        return outlet.relay()

    return _body(initial, render, live, lambda: fanout.cancel(watch))


def _body(
    events: Iterator[WatchEvent],
    render: Callable[[WatchEvent, bool], bytes],
    then: Callable[[bool], Iterator[bytes]],
    cleanup: Callable[[], object],
) -> Iterator[bytes]:
    """A watch body: headers at once (an empty first chunk), ``events`` written by this
    thread, then what ``then(no event sent yet)`` gives.

    Errors after the first byte cannot become a response any more; they end the stream
    with an ERROR event instead of a cut connection."""
    try:
        yield b""
        first = True
        for event in events:
            yield render(event, first)
            first = False
        yield from then(first)
    except Exception:
        log.exception("watch stream failed")
        error = internal_error("the watch failed").status()
        yield b'{"type":"ERROR","object":%s}\n' % orjson.dumps(error)
    finally:
        cleanup()


def _on_api_error(req: falcon.Request, resp: falcon.Response, ex: ApiError, _: Any) -> None:
    resp.status = falcon.code_to_http_status(ex.code)
    resp.content_type = JSON
    resp.data = orjson.dumps(ex.status())
    for key, value in ex.headers.items():
        resp.set_header(key, value)


def _on_http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: Any
) -> None:
    code = ex.status_code
    if code == 404:
        error = not_found_path()
    elif code == 405:
        error = method_not_allowed()
    else:
        reason = _REASONS.get(code, "Unknown")
        error = ApiError(code, reason, ex.description or ex.title or reason)
    _on_api_error(req, resp, error, params)


def _on_exception(req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any) -> None:
    log.exception("unhandled error serving %s %s", req.method, req.path)
    _on_api_error(req, resp, internal_error(type(ex).__name__), params)


class Security:
    """Authentication and authorization wired to the cluster, or to settings files in dev."""

    def __init__(self, settings: Settings, authorizer: authz.Authorizer | None) -> None:
        cluster = None
        if settings.kubeconfig or settings.in_cluster:
            cluster = Cluster.from_environment(
                settings.kubeconfig or None,
                timeout=settings.review_timeout_seconds,
                service_account=settings.service_account_dir,
            )
        upstream = cluster or _user_cluster(settings)
        self.upstream = None
        if upstream is not None:
            events = TaskEvents(upstream, ttl=settings.events_cache_seconds)
            self.upstream = Upstream(upstream, events, settings.combined_access_check)
        load: Callable[[], AuthConfig]
        tokens: TokenReviewer | None = None
        if cluster is None:
            load = functools.partial(from_settings, settings)
            self.authorizer = authorizer or authz.MastersOnly()
        else:
            reviews = cluster

            def load() -> AuthConfig:
                return from_configmap(authentication_configmap(reviews))

            tokens = ReviewCache(
                lambda token: token_review(reviews, token), ttl=settings.auth_cache_seconds
            ).get
            self.authorizer = authorizer or authz.SubjectAccessReviews(
                lambda spec: subject_access_review(reviews, spec), ttl=settings.auth_cache_seconds
            )
        self.source = AuthConfigSource(load, settings.auth_refresh_seconds)
        self.source.refresh()
        self.source.start()
        self.authenticator = Authenticator(lambda: self.source.current, tokens)


def _user_cluster(settings: Settings) -> Cluster | None:
    """In dev, the cluster of ``KUBECONFIG`` (if set and usable) for combinedtasks only."""
    if not settings.user_kubeconfig:
        return None
    try:
        return Cluster.from_environment(settings.user_kubeconfig)
    except ClusterError as error:
        log.warning("combinedtasks have no cluster: %s", error)
        return None


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    authorizer: authz.Authorizer | None = None,
) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the WSGI application (gunicorn calls this once per worker)."""
    settings = settings or Settings.from_env()
    registry = kinds.registry()
    discovery = Discovery(registry)
    docs = OpenAPI(registry)
    holder = StoreHolder(settings, store)
    holder.check()
    security = Security(settings, authorizer)
    middleware: list[Any] = [RequestLog(), Gate(security.authenticator, security.authorizer)]
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    alive = Health({})
    app.add_route("/healthz", alive)
    app.add_route("/livez", alive)
    app.add_route(
        "/readyz", Health({"store": holder.check, "authentication": security.source.check})
    )
    app.add_route("/version", Static(discovery.version))
    app.add_route("/api", NotServed())
    app.add_route("/apis", Apis(discovery))
    app.add_route("/apis/{group}", ApiGroup(discovery))
    app.add_route(f"/apis/{GROUP_VERSION}", Static(discovery.resources))
    openapi_v3 = OpenAPIv3(docs)
    app.add_route("/openapi/v2", OpenAPIv2(docs))
    app.add_route("/openapi/v3", openapi_v3)
    app.add_route(f"/openapi/v3/apis/{GROUP_VERSION}", openapi_v3, suffix="group_version")
    resources = Resources(holder, settings, security.upstream)
    app.add_sink(resources, re.compile(rf"^/apis/{re.escape(GROUP_VERSION)}/"))
    app.add_error_handler(Exception, _on_exception)
    app.add_error_handler(falcon.HTTPError, _on_http_error)
    app.add_error_handler(ApiError, _on_api_error)
    return app
