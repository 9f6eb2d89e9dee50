"""What differs between kinds stored here, and between a kind and its subresources: strategies.

As k8s.io/apiserver's registry strategies (``RESTCreateStrategy``, ``RESTUpdateStrategy``), the
generic verbs (:mod:`handlers.owned`) call these named hooks instead of branching on the kind
or the subresource. A kind declares one strategy for the resource itself and one per
subresource; a new kind with rules of its own subclasses :class:`Strategy`.

What is the same for every kind stays in the generic verbs: names and generateName, the
fields the server owns (uid, creationTimestamp, generation), resourceVersion preconditions,
dry-run, no-op detection and finalizers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.api.errors import Cause
from handlers.api.fieldsets import Path


class Strategy:
    """The resource itself, for a kind whose ``.status`` only its status subresource writes
    (kube's custom resource strategy with the status subresource enabled)."""

    allow_create_on_apply = True
    """A server-side apply of a missing object creates it (kube's forceAllowCreate)."""

    reset_fields: tuple[Path, ...] = (("f:status",),)
    """Fields requests through this resource may not change, so never own (kube's
    GetResetFields): the status is its subresource's."""

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        """Change ``obj`` before it is first stored: status is not the creator's to write."""
        obj.pop("status", None)

    def prepare_for_update(self, obj: dict[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
        """The object to store in place of ``old``: ``obj`` with the status ``old`` had."""
        prepared = {key: value for key, value in obj.items() if key != "status"}
        if "status" in old:
            prepared["status"] = old["status"]
        return prepared

    def validate(self, obj: Mapping[str, Any]) -> list[Cause]:
        """The kind's own rules for a new object, beyond its schema and metadata."""
        return []

    def validate_update(self, obj: Mapping[str, Any], old: Mapping[str, Any]) -> list[Cause]:
        """The kind's own rules for a change (by default those of a new object)."""
        return self.validate(obj)

    def canonicalize(self, obj: dict[str, Any]) -> None:
        """Put ``obj`` in its canonical form just before it is stored."""


class StatusStrategy(Strategy):
    """The status subresource: it changes ``.status`` and nothing else, never creates."""

    allow_create_on_apply = False
    reset_fields = (("f:apiVersion",), ("f:kind",), ("f:metadata",), ("f:spec",))

    def prepare_for_update(self, obj: dict[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
        """``old`` with the new status."""
        return {**old, "status": obj.get("status", {})}
