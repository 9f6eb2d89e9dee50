"""What a write tells admission, and what admission may answer: k8s.io/apiserver's
``admission.Attributes`` and its validating interface, as the write path and the plugins
(``handlers/admission``) share them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from handlers.api.errors import ApiError, Resource
from handlers.api.users import Authorize, User, allowed

CREATE, UPDATE, DELETE = "CREATE", "UPDATE", "DELETE"


@dataclass(frozen=True, slots=True)
class Attributes:
    """One write as admission sees it. ``name`` is the request's (``""`` for a create by
    ``generateName``, as in kube); ``object`` is the object to store (None for a delete),
    ``old_object`` the stored one (None for a create). Both are read-only to plugins."""

    operation: str
    group: str
    version: str
    kind: str
    resource: str
    subresource: str
    namespace: str
    name: str
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None
    user: User | None
    dry_run: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    """The CreateOptions, UpdateOptions or DeleteOptions of the write."""
    annotate: Callable[[str, str], None] = lambda key, value: None
    """Records an audit annotation on the request (its log line carries them)."""
    authorize: Authorize = allowed
    """Asks whether the requesting user may do something else (CEL's ``authorizer``)."""
    deadline: float | None = None
    """When the request's answer is due (``time.monotonic()``): webhook calls end by then."""

    @property
    def namespaced_name(self) -> str:
        """The object's name as admission errors name it: the request's, else the
        ``generateName`` it was made from (kube admits before a name is generated)."""
        if self.name:
            return self.name
        meta = (self.object or {}).get("metadata") or {}
        return str(meta.get("generateName") or meta.get("name") or "Unknown")

    def forbidden(self, why: str) -> ApiError:
        """admission.NewForbidden: ``<resource>.<group> "<name>" is forbidden: <why>``."""
        resource = Resource(self.resource, self.kind, self.group)
        name = self.namespaced_name
        return ApiError(
            403,
            "Forbidden",
            f'{resource.qualified} "{name}" is forbidden: {why}',
            {"name": name, "group": self.group, "kind": self.resource},
        )


class Admission(Protocol):
    """The chain: its mutating plugins (before the write is validated), then its validating
    ones (before it is stored). Each returns the warnings to send, or raises its refusal."""

    def mutate(self, attributes: Attributes) -> tuple[Attributes, tuple[str, ...]]:
        """The write as the mutating plugins leave it (its ``object`` maybe changed)."""
        ...

    def validate(self, attributes: Attributes) -> tuple[str, ...]: ...

    def unready(self) -> str:
        """Why the chain cannot admit yet (its caches not synced), or ``""``."""
        ...


class NoAdmission:
    """The chain with no plugin: no cluster is configured to read policies from."""

    def mutate(self, attributes: Attributes) -> tuple[Attributes, tuple[str, ...]]:
        return attributes, ()

    def validate(self, attributes: Attributes) -> tuple[str, ...]:
        return ()

    def unready(self) -> str:
        return ""


NO_ADMISSION = NoAdmission()
