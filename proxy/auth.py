"""Authentication, then authorization: two separate steps, as in kube's delegated servers.

Authentication reads the TLS peer certificate that gunicorn verified against the client CA
(user = CN, groups = O) and otherwise yields ``system:anonymous``. Authorization lets
``system:masters`` and the health paths through and denies everything else with kube's
403 wording; a SubjectAccessReview authorizer slots in behind the same interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from handlers.contract import User
from handlers.errors import ApiError, forbidden
from proxy.requestinfo import RequestInfo

ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))
AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"
HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz"})


def peer_certificate(environ: Mapping[str, Any]) -> dict[str, Any] | None:
    """The verified client certificate of the connection, as ``ssl`` reports it."""
    sock = environ.get("gunicorn.socket") or environ.get("gunicorn.sock")
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return None
    cert: dict[str, Any] | None = getpeercert()
    return cert or None


def x509_user(cert: Mapping[str, Any]) -> User | None:
    """User = subject CN, groups = subject O values (plus ``system:authenticated``)."""
    names: list[str] = []
    groups: list[str] = []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                names.append(value)
            elif key == "organizationName":
                groups.append(value)
    if not names:
        return None
    return User(names[0], (*groups, AUTHENTICATED))


def authenticate(environ: Mapping[str, Any]) -> User:
    """Who is asking: the client certificate's user, or anonymous."""
    cert = peer_certificate(environ)
    user = x509_user(cert) if cert else None
    return user or ANONYMOUS


@dataclass(frozen=True, slots=True)
class Decision:
    """An authorization answer; ``reason`` is appended to the 403 message when set."""

    allowed: bool
    reason: str = ""


class Authorizer(Protocol):
    """Decides whether ``user`` may do what ``info`` describes."""

    def authorize(self, user: User, info: RequestInfo) -> Decision: ...


class MastersOnly:
    """Health paths and ``system:masters`` pass; everything else is denied."""

    def authorize(self, user: User, info: RequestInfo) -> Decision:
        if info.path in HEALTH_PATHS or MASTERS in user.groups:
            return Decision(True)
        return Decision(False)


def forbidden_error(user: User, info: RequestInfo, reason: str = "") -> ApiError:
    """The 403 Status exactly as kube words it."""
    suffix = f": {reason}" if reason else ""
    if not info.is_resource:
        return forbidden(
            f'forbidden: User "{user.name}" cannot {info.verb} path "{info.path}"{suffix}'
        )
    resource = info.resource + (f"/{info.subresource}" if info.subresource else "")
    qualified = f"{info.resource}.{info.group}" if info.group else info.resource
    named = f' "{info.authorized_name}"' if info.authorized_name else ""
    scope = f' in the namespace "{info.namespace}"' if info.namespace else " at the cluster scope"
    message = (
        f'{qualified}{named} is forbidden: User "{user.name}" cannot {info.verb} resource '
        f'"{resource}" in API group "{info.group}"{scope}{suffix}'
    )
    return forbidden(
        message,
        {"name": info.authorized_name, "group": info.group, "kind": info.resource},
    )


def authorize(authorizer: Authorizer, user: User, info: RequestInfo) -> None:
    """Raise the 403 Status unless ``authorizer`` allows the request."""
    decision = authorizer.authorize(user, info)
    if not decision.allowed:
        raise forbidden_error(user, info, decision.reason)
