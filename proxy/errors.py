"""Every error leaves as a ``metav1.Status``: the handlers' ApiError, the web framework's own
HTTP errors (with kube's reasons and wording), and anything unexpected (a 500 that says no
more than the exception's type; the traceback goes to the log)."""

from __future__ import annotations

import logging
from typing import Any

import falcon
import orjson

from handlers.api.errors import (
    ApiError,
    internal_error,
    method_not_allowed,
    not_found_path,
    status_error,
)
from proxy.negotiation import JSON

log = logging.getLogger("apiserver")


def install(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    """Register the handlers, the most specific last (Falcon tries the last added first)."""
    app.add_error_handler(Exception, _on_exception)
    app.add_error_handler(falcon.HTTPError, _on_http_error)
    app.add_error_handler(ApiError, _on_api_error)


def answer(resp: falcon.Response, error: ApiError) -> None:
    """Make ``resp`` the Status of ``error``."""
    resp.status = falcon.code_to_http_status(error.code)
    resp.content_type = JSON
    resp.data = orjson.dumps(error.status())
    for key, value in error.headers.items():
        resp.set_header(key, value)


def _on_api_error(req: falcon.Request, resp: falcon.Response, ex: ApiError, _: Any) -> None:
    answer(resp, ex)


def _on_http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: Any
) -> None:
    code = ex.status_code
    if code == 404:
        error = not_found_path()
    elif code == 405:
        error = method_not_allowed()
    else:
        error = status_error(code, ex.description or ex.title or "")
    _on_api_error(req, resp, error, params)


def _on_exception(req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any) -> None:
    request_id = req.context.get("request_id", "")
    log.exception("unhandled error serving %s %s (request %s)", req.method, req.path, request_id)
    req.context.panic = type(ex).__name__  # the audit log's Panic stage
    _on_api_error(req, resp, internal_error(type(ex).__name__), params)
