"""kube's authorizer library: ``authorizer.group(g).resource(r)...check(verb)``,
``authorizer.path(p).check(verb)``, ``authorizer.serviceAccount(namespace, name)`` and a
decision's ``allowed()``, ``reason()``, ``errored()``, ``error()``. Its values name their
request's Context by key (see :mod:`~handlers.admission.cel.contexts`); kube's field and label
selectors are accepted, not forwarded."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from handlers.admission.cel.contexts import find
from handlers.admission.cel.values import NO_OVERLOAD, Refusal, tagged
from handlers.api import names

ALLOW, DENY, NO_OPINION = "allow", "deny", "noOpinion"
"""An authorizer's decisions (kube's ``authorizer.Decision``)."""


class Authorizer(Protocol):
    """The requesting user's authorizer: (decision, reason); an exception is an errored check."""

    def __call__(
        self,
        *,
        group: str,
        resource: str,
        subresource: str,
        namespace: str,
        name: str,
        verb: str,
        path: str = "",
    ) -> tuple[str, str]: ...


class UserScopedAuthorizer(Authorizer, Protocol):
    """An Authorizer that can also answer for another user, which
    ``authorizer.serviceAccount(namespace, name)`` needs; without ``for_user``, such checks are
    errored decisions."""

    def for_user(self, user: str, groups: tuple[str, ...]) -> Authorizer: ...


_AUTHORIZER = "@kubernetes.authorization.Authorizer"
_GROUP_CHECK = "@kubernetes.authorization.GroupCheck"
_RESOURCE_CHECK = "@kubernetes.authorization.ResourceCheck"
_PATH_CHECK = "@kubernetes.authorization.PathCheck"
DECISION = "@kubernetes.authorization.Decision"


def _authz_value(value: Any) -> dict[str, Any]:
    if type(value) is dict and _AUTHORIZER in value:
        return value
    raise Refusal(NO_OVERLOAD)


def authz_path(authz: Any, path: str) -> dict[str, Any]:
    authz = _authz_value(authz)
    if not path.strip():
        raise Refusal("path must not be empty")
    return {_PATH_CHECK: authz[_AUTHORIZER], "user": authz["user"], "path": path}


def authz_group(authz: Any, group: str) -> dict[str, Any]:
    authz = _authz_value(authz)
    return {_GROUP_CHECK: authz[_AUTHORIZER], "user": authz["user"], "group": group}


def authz_service_account(authz: Any, namespace: str, name: str) -> dict[str, Any]:
    context = _authz_value(authz)[_AUTHORIZER]
    if names.dns1123_subdomain(name):
        raise Refusal("Invalid service account name")
    if names.dns1123_label(namespace):
        raise Refusal("Invalid service account namespace")
    return {_AUTHORIZER: context, "user": [namespace, name]}


def group_resource(check: Any, resource: str) -> dict[str, Any]:
    if not resource.strip():
        raise Refusal("resource must not be empty")
    return {
        _RESOURCE_CHECK: tagged(check, _GROUP_CHECK),
        "user": check["user"],
        "group": check["group"],
        "resource": resource,
        "subresource": "",
        "namespace": "",
        "name": "",
        "fieldSelector": "",
        "labelSelector": "",
    }


def resource_with(key: str) -> Callable[[Any, str], dict[str, Any]]:
    def set_field(check: Any, value: str) -> dict[str, Any]:
        tagged(check, _RESOURCE_CHECK)
        return {**check, key: value}

    return set_field


def ask(check: Any, verb: str) -> dict[str, Any]:
    if type(check) is dict and _RESOURCE_CHECK in check:
        context, path = check[_RESOURCE_CHECK], ""
        keys = ("group", "resource", "subresource", "namespace", "name")
        attributes: tuple[str, ...] = tuple(check[k] for k in keys)
    else:
        context, path = tagged(check, _PATH_CHECK), check["path"]
        attributes = ("", "", "", "", "")
    return find(context)._authorize(check["user"], attributes, verb, path)


def decision_reader(pick: Callable[[dict[str, Any]], Any]) -> Callable[[Any], Any]:
    def read(decision: Any) -> Any:
        tagged(decision, DECISION)
        return pick(decision)

    return read


def authorizer_variable(context: int, request: Any) -> dict[str, Any]:
    """The ``authorizer`` variable of a Context, with kube's ``authorizer.requestResource``: a
    check of the request's own resource."""
    request = request if isinstance(request, dict) else {}
    resource = request.get("resource") or {}
    request_resource = {
        _RESOURCE_CHECK: context,
        "user": None,
        "group": resource.get("group", ""),
        "resource": resource.get("resource", ""),
        "subresource": request.get("subResource") or "",
        "namespace": request.get("namespace") or "",
        "name": request.get("name") or "",
        "fieldSelector": "",
        "labelSelector": "",
    }
    return {_AUTHORIZER: context, "user": None, "requestResource": request_resource}


class Decisions:
    """A Context's authorizer, asked once per distinct check of the Context."""

    def __init__(self, authorizer: Authorizer | None) -> None:
        self.authorizer = authorizer
        self._known: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def decide(
        self, user: list[str] | None, attributes: tuple[str, ...], verb: str, path: str
    ) -> dict[str, Any]:
        """A decision of the authorizer, asked once per distinct check."""
        key = (tuple(user or ()), attributes, verb, path)
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known
        decision, reason, error = NO_OPINION, "", ""
        try:
            authorizer = self._authorizer_for(user)
            group, resource, subresource, namespace, name = attributes
            decision, reason = authorizer(
                group=group,
                resource=resource,
                subresource=subresource,
                namespace=namespace,
                name=name,
                verb=verb,
                path=path,
            )
        except Exception as failure:  # any failure of the authorizer is an errored decision
            error = str(failure) or type(failure).__name__
        found = {DECISION: decision, "reason": reason, "error": error}
        with self._lock:
            return self._known.setdefault(key, found)

    def _authorizer_for(self, user: list[str] | None) -> Authorizer:
        authorizer = self.authorizer
        if authorizer is None:
            raise Refusal("no authorizer")
        if not user:
            return authorizer
        namespace, name = user
        for_user = getattr(authorizer, "for_user", None)
        if for_user is None:
            raise RuntimeError("the authorizer cannot check for service accounts")
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")
        scoped: Authorizer = for_user(f"system:serviceaccount:{namespace}:{name}", groups)
        return scoped
