"""A CombinedTask: a cluster Task joined with its Events; and what every combinedtasks verb
shares: the upstream (the cluster, checked for the caller's own access first) and how its
errors reach the caller."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from handlers.api import GROUP_VERSION
from handlers.api.contract import ApiRequest, Deps
from handlers.api.errors import ApiError, service_unavailable
from k8s.client import ClusterError
from k8s.paths import TASK_GROUP
from k8s.upstream import Upstream

KIND = "CombinedTask"
_PASSED_CODES = frozenset({400, 403, 404, 410, 422, 429})

T = TypeVar("T")


def combine(task: Mapping[str, Any], events: list[Any]) -> dict[str, Any]:
    """A CombinedTask: the Task's metadata and spec, its Events (oldest first) as status."""
    return {
        "kind": KIND,
        "apiVersion": GROUP_VERSION,
        "metadata": task.get("metadata") or {},
        "spec": task.get("spec") or {},
        "status": {"events": list(events)},
    }


def upstream(request: ApiRequest, deps: Deps) -> Upstream:
    """The cluster to read, once the caller is known to be allowed to list tasks and events
    itself (the server reads with its own identity: combinedtasks reveal nothing more); 503
    when no cluster is configured."""
    found = deps.upstream
    if found is None:
        raise service_unavailable("combinedtasks are read from a cluster, and none is configured")
    if found.check_access:
        request.authorize("list", TASK_GROUP, "tasks")
        request.authorize("list", "", "events")
    return found


def upstream_error(error: ClusterError) -> ApiError:
    """The cluster's own Status for what the caller can act on (a bad selector, 403, 404, an
    expired continue token, 410); anything else, an unreachable cluster included, is a 503
    that names the cluster call."""
    body = error.body or {}
    if error.status in _PASSED_CODES and body.get("kind") == "Status":
        return ApiError(
            error.status,
            str(body.get("reason") or ""),
            str(body.get("message") or error.message),
            body.get("details"),
        )
    return service_unavailable(f"the cluster could not be read: {error.message}")


def read(call: Callable[[], T]) -> T:
    """``call()``, a cluster error becoming the caller's Status."""
    try:
        return call()
    except ClusterError as error:
        raise upstream_error(error) from None


def uid_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid", ""))


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


def recorded(obj: Any) -> Any:
    """A CombinedTask's Events."""
    return (obj.get("status") or {}).get("events") or ()


def event_count(obj: Any) -> int:
    """The Events column."""
    return len(recorded(obj))


def last_reason(obj: Any) -> str:
    """The Last Event column: the reason of the latest Event."""
    events = recorded(obj)
    return str(events[-1].get("reason") or "") if events else ""
