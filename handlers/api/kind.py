"""A kind's declaration: the single source for routing, discovery, OpenAPI, validation and
Table columns.

Each kind is a package under ``handlers/`` whose ``__init__`` declares ``KIND``; which verbs it
serves is not declared but found, by :mod:`handlers.registry`, from the verb modules present.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.api import GROUP, GROUP_VERSION, VERSION, shapes
from handlers.api.columns import Column
from handlers.api.errors import Resource
from handlers.api.objectmeta import OBJECT_META_DESCRIPTION, described_ref
from handlers.api.shapes import Shape
from handlers.api.strategy import Strategy
from store.fulltext import Document

FieldGetter = Callable[[Mapping[str, Any]], str]
DocumentGetter = Callable[[Mapping[str, Any]], Document]


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
    strategies: Mapping[str, Strategy] = field(default_factory=dict)
    """For a kind stored here: the strategy of the resource itself (key ``""``) and of each
    subresource (key ``"status"``); empty for a kind read from elsewhere."""
    document: DocumentGetter | None = None
    """For a kind stored here and searchable (``details?q=``): what the index keeps of an
    object."""
    list_name: str = ""
    """The kind of its lists when not ``<kind>List``: a resource without a kind of its own
    (``kind=""``, the tutorial's search) still answers JSON lists."""
    plain: Callable[[Mapping[str, Any]], str] | None = None
    """For a resource that also answers ``text/plain`` (the tutorial's search): an item's
    text, the answer joining those of its items with commas."""

    shape: Shape = field(init=False, repr=False, compare=False)
    """How server-side apply sees an object of the kind (read from :meth:`schema` once)."""

    group = GROUP
    version = VERSION
    api_version = GROUP_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", shapes.of_schema(self.schema()))

    @property
    def list_kind(self) -> str:
        return self.list_name or self.kind + "List"

    @property
    def has_objects(self) -> bool:
        """Whether the resource is made of objects of a kind; one that is not (a search) is
        read with ``get`` on its collection path, as the tutorial serves it."""
        return bool(self.kind)

    @property
    def resource(self) -> Resource:
        """Names the resource in error messages."""
        return Resource(self.plural, self.kind)

    @property
    def field_selectors(self) -> tuple[str, ...]:
        """Fields usable in ``fieldSelector``."""
        scope = ("metadata.namespace",) if self.namespaced else ()
        return ("metadata.name", *scope, *self.selectable_fields)

    def strategy(self, subresource: str | None) -> Strategy:
        """The strategy of the resource itself (``None``) or of one of its subresources."""
        return self.strategies[subresource or ""]

    def field_values(self, obj: Mapping[str, Any]) -> dict[str, str]:
        """The values of the selectable fields, as the store keeps them beside the object."""
        return {path: getter(obj) for path, getter in self.selectable_fields.items()}

    def search_document(self, obj: Mapping[str, Any]) -> Document | None:
        """What the search index keeps of ``obj`` (None when the kind is not searchable)."""
        return None if self.document is None else self.document(obj)

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
