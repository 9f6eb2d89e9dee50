"""``metav1.Status`` errors in kube's reasons, codes and wording.

Handlers raise :class:`ApiError`; the proxy renders it. :data:`REASONS` is the one table of
reasons by code (also for the web framework's own errors). The constructors take the resource's
qualified name (``customtasks.search.task.example.example.com``) so that every message reads
exactly as kube-apiserver's does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.api import GROUP

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
"""kube's ``metav1.StatusReason`` for each code this server answers."""


@dataclass(frozen=True, slots=True)
class Cause:
    """One field error of an Invalid Status."""

    field: str
    reason: str
    message: str


class ApiError(Exception):
    """An error answered as a ``metav1.Status``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        list_meta: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})
        self.list_meta = dict(list_meta or {})

    def status(self) -> dict[str, Any]:
        """The Status object."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": self.list_meta,
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            body["details"] = self.details
        body["code"] = self.code
        return body


@dataclass(frozen=True, slots=True)
class Resource:
    """Names a resource in error messages."""

    plural: str
    kind: str
    group: str = GROUP

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}"

    def not_found(self, name: str) -> ApiError:
        return ApiError(
            404, "NotFound", f'{self.qualified} "{name}" not found', self._details(name)
        )

    def already_exists(self, name: str) -> ApiError:
        return ApiError(
            409, "AlreadyExists", f'{self.qualified} "{name}" already exists', self._details(name)
        )

    def conflict(self, name: str, why: str | None = None) -> ApiError:
        why = why or (
            "the object has been modified; please apply your changes to the latest version "
            "and try again"
        )
        return ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {self.qualified} "{name}": {why}',
            self._details(name),
        )

    def invalid(self, name: str, causes: Sequence[Cause]) -> ApiError:
        lines = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
        summary = lines[0] if len(lines) == 1 else "[" + ", ".join(lines) + "]"
        return ApiError(
            422,
            "Invalid",
            f'{self.kind}.{self.group} "{name}" is invalid: {summary}',
            {
                "name": name,
                "group": self.group,
                "kind": self.kind,
                "causes": [
                    {"reason": c.reason, "message": c.message, "field": c.field} for c in causes
                ],
            },
        )

    def _details(self, name: str) -> dict[str, str]:
        return {"name": name, "group": self.group, "kind": self.plural}


def status_error(code: int, message: str) -> ApiError:
    """An error of ``code`` with kube's reason for it (also its message when none is given)."""
    reason = REASONS.get(code, "Unknown")
    return ApiError(code, reason, message or reason)


def bad_request(message: str) -> ApiError:
    return status_error(400, message)


def not_found_path() -> ApiError:
    return status_error(404, "the server could not find the requested resource")


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def not_acceptable(accepted: Sequence[str]) -> ApiError:
    return ApiError(
        406,
        "NotAcceptable",
        "the server was unable to respond with a content type that the client supports "
        f"(accepted media types include: {', '.join(accepted)})",
    )


def unsupported_media_type(accepted: Sequence[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def expired(message: str, continue_token: str | None = None) -> ApiError:
    return ApiError(
        410,
        "Expired",
        message,
        list_meta={"continue": continue_token} if continue_token else None,
    )


def unauthorized() -> ApiError:
    return status_error(401, "Unauthorized")


def forbidden(message: str, details: Mapping[str, Any] | None = None) -> ApiError:
    return ApiError(403, "Forbidden", message, details)


def internal_error(message: str = "an internal error occurred") -> ApiError:
    return status_error(500, f"Internal error occurred: {message}")


def service_unavailable(message: str) -> ApiError:
    return status_error(503, message)


def too_many_requests() -> ApiError:
    """kube-apiserver's answer when it is at its limit; clients retry after a second."""
    return ApiError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        {"retryAfterSeconds": 1},
        headers={"Retry-After": "1"},
    )


def timeout(message: str = "request did not complete within the allotted timeout") -> ApiError:
    """kube-apiserver's answer to a request that outlived its deadline (``NewTimeoutError``)."""
    return ApiError(504, "Timeout", f"Timeout: {message}")


def too_large_resource_version(requested: int, current: int) -> ApiError:
    return ApiError(
        504,
        "Timeout",
        f"Too large resource version: {requested}, current: {current}",
        {
            "causes": [
                {
                    "reason": "ResourceVersionTooLarge",
                    "message": f"Too large resource version: {requested}, current: {current}",
                }
            ],
            "retryAfterSeconds": 1,
        },
        headers={"Retry-After": "1"},
    )


def request_entity_too_large(limit: int) -> ApiError:
    return status_error(413, f"the request body exceeds {limit} bytes")
