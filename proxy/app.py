"""The Falcon application, as a table of contents: what each request meets, and where it lives.

``create_app()`` is what gunicorn loads in every worker. Middleware (:mod:`proxy.middleware`)
logs each request, records kube's request metrics (:mod:`proxy.metrics`, scraped at
``/metrics`` by :mod:`proxy.scrape`) and turns each request into a RequestInfo, a deadline,
a user, a slot of the worker's in-flight limit and an authorization decision; the documents
(:mod:`proxy.documents`) answer health, discovery and OpenAPI from memory; the sink
(:mod:`proxy.dispatch`) hands resource requests to ``handlers/<kind>/<verb>.py``, whose
writes pass the admission chain built here (:mod:`handlers.admission.chain`); watches stream
through :mod:`proxy.streaming`; every error leaves as a Status (:mod:`proxy.errors`).
"""

from __future__ import annotations

import re
import threading
from typing import Any

import falcon

from handlers.admission import chain
from handlers.api import GROUP_VERSION
from handlers.api.admission import NO_ADMISSION, Admission
from handlers.registry import Served, registry
from proxy import auditing, authz, errors, lifecycle
from proxy.cluster import connect
from proxy.deadline import RequestTimeout
from proxy.discovery import Discovery
from proxy.dispatch import Resources
from proxy.documents import ApiGroup, Apis, Health, NotServed, OpenAPIv2, OpenAPIv3, Static
from proxy.inflight import InFlightLimit
from proxy.metrics import Instrumentation
from proxy.middleware import REQUEST_LOG_FROM, Gate, RequestLog
from proxy.openapi import OpenAPI
from proxy.scrape import Metrics, StoreFigures
from proxy.security import Security
from proxy.settings import Settings
from proxy.storage import StoreHolder
from store import Store


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    authorizer: authz.Authorizer | None = None,
    kinds: tuple[Served, ...] | None = None,
    stop: threading.Event = lifecycle.stopping,
) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the WSGI application (gunicorn calls this once per worker). Its background
    threads (the cluster's followers, the compactor, the trusts' refresh) end when ``stop``
    is set: an app made in process can end them alone."""
    settings = settings or Settings.from_env()
    kinds = kinds if kinds is not None else registry()
    discovery = Discovery(kinds)
    docs = OpenAPI(kinds)
    cluster = connect(settings)
    indexed = cluster.upstream.cluster if cluster.upstream else None
    holder = StoreHolder(settings, store, indexed, stop)
    holder.check()
    security = Security(settings, cluster.reviews, authorizer, stop)
    admission: Admission = NO_ADMISSION
    if cluster.reviews is not None:  # the policies of the cluster that reviews requests
        admission = chain.connect(cluster.reviews, stop)

    limit = InFlightLimit.for_worker(settings)
    if limit is not None:
        limit.report(stop)
    timeout = RequestTimeout(settings.request_timeout_seconds)
    audit = auditing.from_settings(settings)
    gate = Gate(
        security.authenticator, security.authorizer, limit=limit, timeout=timeout, audit=audit
    )
    middleware: list[Any] = [RequestLog(REQUEST_LOG_FROM[settings.request_log])]
    middleware += [Instrumentation()] if settings.metrics else []
    middleware += [audit] if audit else []
    middleware.append(gate)
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    for name in ("healthz", "livez"):
        health = Health(name, {})
        app.add_route(f"/{name}", health)
        app.add_route(f"/{name}/{{check}}", health, suffix="check")
    ready = Health(
        "readyz",
        {
            "store": holder.check,
            "authentication": security.source.check,
            "admission": admission.unready,
            "shutdown": lambda: "process is shutting down" if stop.is_set() else "",
        },
    )
    app.add_route("/readyz", ready)
    app.add_route("/readyz/{check}", ready, suffix="check")
    if settings.metrics:
        stored = [served.kind.plural for served in kinds if "create" in served.handlers]
        app.add_route("/metrics", Metrics([StoreFigures(holder.get, stored)]))
    app.add_route("/version", Static(discovery.version))
    app.add_route("/api", NotServed())
    app.add_route("/apis", Apis(discovery))
    app.add_route("/apis/{group}", ApiGroup(discovery))
    app.add_route(f"/apis/{GROUP_VERSION}", Static(discovery.resources))
    openapi_v3 = OpenAPIv3(docs)
    app.add_route("/openapi/v2", OpenAPIv2(docs))
    app.add_route("/openapi/v3", openapi_v3)
    app.add_route(f"/openapi/v3/apis/{GROUP_VERSION}", openapi_v3, suffix="group_version")
    resources = Resources(kinds, holder, settings, cluster.upstream, admission)
    app.add_sink(resources, re.compile(rf"^/apis/{re.escape(GROUP_VERSION)}/"))
    errors.install(app)
    return app
