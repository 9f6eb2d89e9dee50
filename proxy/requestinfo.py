"""A request in Kubernetes terms, parsed from method and path exactly as kube's RequestInfo.

Authorization, routing and logging all read this one parse.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from handlers.api.params import flag

_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "GET": "get", "HEAD": "get"}
_REMEMBERED_CHARS = 1024  # a namespace (63), a name (253) and a group's path fit many times


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a request addresses; ``verb`` is kube's verb or, for other paths, the method."""

    path: str
    verb: str
    is_resource: bool = False
    group: str = ""
    version: str = ""
    namespace: str | None = None
    resource: str = ""
    name: str | None = None
    subresource: str | None = None
    extra_parts: bool = False
    selected_name: str | None = None

    @property
    def authorized_name(self) -> str:
        """The name authorization sees: the URL's, or one pinned by ``metadata.name=``."""
        return self.name or self.selected_name or ""


def parse(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    """Parse ``/apis/<group>/<version>/[namespaces/<ns>/]<resource>[/<name>[/<sub>]]``.

    Clients ask for the same objects again and again (a controller's gets, a dashboard's
    lists): the answer is remembered for the method, the path and the two parameters it
    depends on (``watch``, ``fieldSelector``), unless they are longer than any object's
    path (a client may send a megabyte of them: 4,096 such would hold gigabytes)."""
    watch, selector = flag(query, "watch"), query.get("fieldSelector", "")
    if len(path) + len(selector) > _REMEMBERED_CHARS:
        return _parsed.__wrapped__(method, path, watch, selector)
    return _parsed(method, path, watch, selector)


@functools.lru_cache(maxsize=4096)
def _parsed(method: str, path: str, watch: bool, field_selector: str) -> RequestInfo:
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 4 or parts[0] != "apis":
        return RequestInfo(path=path, verb=method.lower())
    group, version, rest = parts[1], parts[2], parts[3:]
    verb = _VERBS.get(method, method.lower())
    if rest[0] == "watch":
        verb, rest = "watch", rest[1:]
    namespace = None
    if rest and rest[0] == "namespaces" and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    elif rest and rest[0] == "namespaces" and len(rest) == 2:
        rest = ["namespaces", rest[1]]
    if not rest:
        return RequestInfo(path=path, verb=method.lower())
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if name is None:
        if method == "DELETE":
            verb = "deletecollection"
        elif verb == "get":
            verb = "watch" if watch else "list"
    elif method == "DELETE":
        verb = "delete"
    selected = None
    if name is None and verb in ("list", "watch"):
        selected = _name_from_field_selector(field_selector) or None
    return RequestInfo(
        path=path,
        verb=verb,
        is_resource=True,
        group=group,
        version=version,
        namespace=namespace,
        resource=resource,
        name=name,
        subresource=subresource,
        extra_parts=len(rest) > 3,
        selected_name=selected,
    )


def _name_from_field_selector(selector: str) -> str:
    """kube authorizes ``list``/``watch`` of ``metadata.name=x`` as access to ``x``."""
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        if sep and key.strip() == "metadata.name" and not key.endswith("!"):
            return value.removeprefix("=").strip()
    return ""
