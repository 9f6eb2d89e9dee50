"""Authorization, as kube's delegated servers do it (A7).

``system:masters`` and the health paths pass without a review (the aggregator's availability
check depends on it); everything else is a SubjectAccessReview with kube's verb mapping,
answers cached for a few seconds and concurrent identical reviews made once. When a review
cannot be made, the request is refused: nothing fails open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from handlers.api.errors import ApiError, forbidden, internal_error
from handlers.api.users import User
from proxy.requestinfo import RequestInfo
from proxy.reviewcache import ReviewCache

log = logging.getLogger("apiserver.auth")

MASTERS = "system:masters"
HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz"})

Reviewer = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""A SubjectAccessReview spec -> its status; raises when the review cannot be made."""


@dataclass(frozen=True, slots=True)
class Decision:
    """An authorization answer; ``reason`` is appended to the 403 message when set."""

    allowed: bool
    reason: str = ""


class Authorizer(Protocol):
    """Decides whether ``user`` may do what ``info`` describes."""

    def authorize(self, user: User, info: RequestInfo) -> Decision: ...


def always_allowed(user: User, info: RequestInfo) -> bool:
    """Health paths and ``system:masters`` need no review."""
    return info.path in HEALTH_PATHS or MASTERS in user.groups


class MastersOnly:
    """Without a cluster to ask, only what needs no review is allowed."""

    def authorize(self, user: User, info: RequestInfo) -> Decision:
        if always_allowed(user, info):
            return Decision(True)
        return Decision(False, "no cluster is configured to review access")


class SubjectAccessReviews:
    """Asks the cluster, through a short cache that coalesces identical reviews."""

    def __init__(self, review: Reviewer, *, ttl: float) -> None:
        self._review = review
        self._cache: ReviewCache[Decision] = ReviewCache(
            self._decide, review="SubjectAccessReview", ttl=ttl
        )

    def authorize(self, user: User, info: RequestInfo) -> Decision:
        if always_allowed(user, info):
            return Decision(True)
        key = orjson.dumps(review_spec(user, info), option=orjson.OPT_SORT_KEYS).decode()
        try:
            return self._cache.get(key)
        except Exception as ex:
            log.warning("SubjectAccessReview failed: %s", ex)
            raise internal_error("the request could not be authorized") from None

    def _decide(self, key: str) -> Decision:
        status = self._review(orjson.loads(key))
        allowed = bool(status.get("allowed")) and not status.get("denied")
        return Decision(allowed, str(status.get("reason") or ""))


def review_spec(user: User, info: RequestInfo) -> dict[str, Any]:
    """The SubjectAccessReview spec for a request."""
    spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups)}
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra.items()}
    if info.is_resource:
        spec["resourceAttributes"] = {
            "namespace": info.namespace or "",
            "verb": info.verb,
            "group": info.group,
            "version": info.version,
            "resource": info.resource,
            "subresource": info.subresource or "",
            "name": info.authorized_name,
        }
    else:
        spec["nonResourceAttributes"] = {"path": info.path, "verb": info.verb}
    return spec


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
    details = {"name": info.authorized_name, "group": info.group, "kind": info.resource}
    return forbidden(message, {k: v for k, v in details.items() if v})


def authorize(authorizer: Authorizer, user: User, info: RequestInfo) -> None:
    """Raise the 403 Status unless ``authorizer`` allows the request."""
    decision = authorizer.authorize(user, info)
    if not decision.allowed:
        raise forbidden_error(user, info, decision.reason)
