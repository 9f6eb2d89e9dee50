"""The registry of kinds: the single source for routing, discovery, OpenAPI, validation and
Table columns.

Each kind is a package under ``handlers/`` whose ``__init__`` declares ``KIND``; its verbs are
exactly the verb modules present in the package (adding a verb is adding a file).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.columns import Column
from handlers.contract import Handler
from handlers.errors import GROUP, GROUP_VERSION, VERSION, Resource
from handlers.objectmeta import OBJECT_META_DESCRIPTION, described_ref

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

FieldGetter = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True, slots=True)
class Kind:
    """Everything declared about one resource of the group."""

    plural: str
    singular: str
    kind: str
    namespaced: bool
    description: str
    spec_schema: dict[str, Any]
    columns: tuple[Column, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ("alltasks",)
    status_schema: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    )
    selectable_fields: Mapping[str, FieldGetter] = field(default_factory=dict)
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    subresources: Mapping[str, Mapping[str, Handler]] = field(default_factory=dict)

    group = GROUP
    version = VERSION
    api_version = GROUP_VERSION

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def resource(self) -> Resource:
        """Names the resource in error messages."""
        return Resource(self.plural, self.kind)

    @property
    def verbs(self) -> list[str]:
        return sorted(self.handlers)

    @property
    def has_status(self) -> bool:
        """``.status`` is written only through the status subresource."""
        return "status" in self.subresources

    @property
    def field_selectors(self) -> tuple[str, ...]:
        """Fields usable in ``fieldSelector``."""
        scope = ("metadata.namespace",) if self.namespaced else ()
        return ("metadata.name", *scope, *self.selectable_fields)

    def schema(self) -> dict[str, Any]:
        """The OpenAPI v3 schema of one object of this kind."""
        return {
            "type": "object",
            "description": self.description,
            "required": ["spec"],
            "properties": {
                "apiVersion": {
                    "type": "string",
                    "description": f"Versioned schema of this representation: {self.api_version}.",
                },
                "kind": {
                    "type": "string",
                    "description": f"Kind of this object: {self.kind}.",
                },
                "metadata": described_ref("ObjectMeta", OBJECT_META_DESCRIPTION),
                "spec": self.spec_schema,
                "status": self.status_schema,
            },
        }


@functools.cache
def registry() -> tuple[Kind, ...]:
    """Every kind under ``handlers/``, with its verb handlers, in name order."""
    import handlers

    kinds = []
    for info in sorted(pkgutil.iter_modules(handlers.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        package = importlib.import_module(f"handlers.{info.name}")
        kind: Kind | None = getattr(package, "KIND", None)
        if kind is None:
            continue
        subresources = {
            m.name: _verbs(f"handlers.{info.name}.{m.name}")
            for m in pkgutil.iter_modules(package.__path__)
            if m.ispkg
        }
        kinds.append(
            dataclasses.replace(
                kind, handlers=_verbs(f"handlers.{info.name}"), subresources=subresources
            )
        )
    return tuple(kinds)


def _verbs(package_name: str) -> dict[str, Handler]:
    """The ``handle`` of each verb module present in a package."""
    package = importlib.import_module(package_name)
    present = {m.name for m in pkgutil.iter_modules(package.__path__)}
    return {
        verb: importlib.import_module(f"{package_name}.{verb}").handle
        for verb in VERBS
        if verb in present
    }


def find(plural: str) -> Kind | None:
    """The kind served under ``plural``, if any."""
    return next((k for k in registry() if k.plural == plural), None)
