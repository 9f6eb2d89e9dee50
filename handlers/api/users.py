"""Who makes a request, as authentication established it (kube's ``user.Info``), and what
else they may do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated identity."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class Authorize(Protocol):
    """Raises the 403 Status unless the caller may also do ``verb`` on what the request
    addresses (a PATCH that creates needs ``create`` too, as in kube) or, given ``group`` and
    ``resource``, on that resource in the request's namespace or in ``namespace`` (``""``: at
    the cluster scope). combinedtasks read Tasks and Events with the server's identity, and a
    search shows objects of every kind, so they first check the caller could read them."""

    def __call__(
        self,
        verb: str,
        group: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        *,
        name: str | None = None,
        subresource: str | None = None,
        path: str | None = None,
    ) -> None:
        """Return when allowed; ``name`` and ``subresource`` narrow a check of another
        resource, ``path`` makes it a check of a non-resource path (the CEL ``authorizer``
        of admission policies asks both)."""


def allowed(
    verb: str,
    group: str | None = None,
    resource: str | None = None,
    namespace: str | None = None,
    *,
    name: str | None = None,
    subresource: str | None = None,
    path: str | None = None,
) -> None:
    """The :class:`Authorize` of a request with nobody to ask: everything is allowed."""
