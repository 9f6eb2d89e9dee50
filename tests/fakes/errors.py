"""The failures the fake cluster answers as a ``metav1.Status``.

The fake's own, not the server's ``ApiError``: the fake stands in for kube-apiserver, so the
codes, reasons and wording here are kube's, checked against nothing in ``handlers/``.
``tests.fakes.objects.install`` turns a :class:`StatusError` into the Status reply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class StatusError(Exception):
    """A request the fake refuses: the Status's code, reason, message and details."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})


def bad_request(message: str) -> StatusError:
    """kube's 400 (a malformed selector or patch), with the message as kube words it."""
    return StatusError(400, "BadRequest", message)


def unsupported_media_type(accepted: Sequence[str]) -> StatusError:
    """kube's 415 for a PATCH in a media type the resource does not take."""
    return StatusError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )
