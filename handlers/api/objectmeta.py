"""Object metadata: its schema (for validation and OpenAPI), generated names and timestamps
(the rules kube applies to it are in :mod:`handlers.api.metavalidation`).

The definitions carry names of our own (``DEFS_PREFIX``), not upstream's
``io.k8s.apimachinery…`` names, so the aggregator never has to rename a colliding definition
when it merges our OpenAPI document into the cluster's.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

DEFS_PREFIX = "com.example.example.task.search.v1."
REF_PREFIX = "#/components/schemas/"


def ref(name: str) -> dict[str, str]:
    """A reference to one of this server's schema definitions."""
    return {"$ref": REF_PREFIX + DEFS_PREFIX + name}


def described_ref(name: str, description: str) -> dict[str, Any]:
    """A reference with a description of its own (``allOf``, as kube writes it, since
    siblings of ``$ref`` are ignored)."""
    return {"description": description, "allOf": [ref(name)]}


OBJECT_META_DESCRIPTION = (
    "Standard object's metadata: name, namespace, labels, annotations, owner references and "
    "the fields the server sets (uid, resourceVersion, generation, creationTimestamp)."
)
LIST_META_DESCRIPTION = "Standard list metadata: the list's resourceVersion and continue token."


def _string_map(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": {"type": "string", "default": ""},
        "description": description,
    }


def _string(description: str, fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "description": description}
    if fmt:
        schema["format"] = fmt
    return schema


def _integer(description: str) -> dict[str, Any]:
    return {"type": "integer", "format": "int64", "description": description}


DEFINITIONS: dict[str, dict[str, Any]] = {
    DEFS_PREFIX + "ObjectMeta": {
        "type": "object",
        "description": "Standard object metadata: identity, labels, ownership and lifecycle.",
        "properties": {
            "annotations": _string_map(
                "Unstructured key-value data for tools; not used for selection."
            ),
            "creationTimestamp": _string(
                "When the server created the object (RFC 3339, UTC). Set by the server.",
                "date-time",
            ),
            "deletionGracePeriodSeconds": _integer(
                "Seconds allowed for graceful termination before the object is removed."
            ),
            "deletionTimestamp": _string(
                "When deletion was requested; the object stays until its finalizers are gone.",
                "date-time",
            ),
            "finalizers": {
                "type": "array",
                "items": {"type": "string", "default": ""},
                "x-kubernetes-list-type": "set",
                "description": "Conditions that must be cleared before the object is removed.",
            },
            "generateName": _string(
                "Prefix from which the server makes a unique name when name is empty."
            ),
            "generation": _integer(
                "Sequence number of the desired state; increases when the spec changes."
            ),
            "labels": _string_map(
                "Key-value pairs used to organize and select objects (label selectors)."
            ),
            "managedFields": {
                "type": "array",
                "items": ref("ManagedFieldsEntry"),
                "description": "Which managers own which fields (server-side apply).",
            },
            "name": _string(
                "Unique name within the namespace (or the cluster), an RFC 1123 subdomain."
            ),
            "namespace": _string("The namespace the object lives in; empty when cluster-scoped."),
            "ownerReferences": {
                "type": "array",
                "items": ref("OwnerReference"),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["uid"],
                "description": "Objects this one depends on; used by the garbage collector.",
            },
            "resourceVersion": _string(
                "Opaque version of this object, changed on every write; "
                "used for optimistic concurrency and watches."
            ),
            "selfLink": _string("Deprecated and unused."),
            "uid": _string("Unique identifier over time, set by the server."),
        },
    },
    DEFS_PREFIX + "ManagedFieldsEntry": {
        "type": "object",
        "description": "One manager's ownership of a set of fields.",
        "properties": {
            "apiVersion": _string("Version of the schema the fields refer to."),
            "fieldsType": _string('Format of fieldsV1; only "FieldsV1".'),
            "fieldsV1": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "description": "The set of owned fields.",
            },
            "manager": _string("Name of the workflow managing these fields."),
            "operation": _string('"Apply" or "Update".'),
            "subresource": _string("Subresource used to change the fields, if any."),
            "time": _string("When the fields were last changed.", "date-time"),
        },
    },
    DEFS_PREFIX + "OwnerReference": {
        "type": "object",
        "description": "Identifies an owning object.",
        "required": ["apiVersion", "kind", "name", "uid"],
        "properties": {
            "apiVersion": _string("API version of the owner."),
            "blockOwnerDeletion": {
                "type": "boolean",
                "description": "Foreground deletion of the owner waits for this object.",
            },
            "controller": {
                "type": "boolean",
                "description": "The owner is the managing controller.",
            },
            "kind": _string("Kind of the owner."),
            "name": _string("Name of the owner."),
            "uid": _string("UID of the owner."),
        },
    },
    DEFS_PREFIX + "ListMeta": {
        "type": "object",
        "description": "Metadata of a list: its revision and paging state.",
        "properties": {
            "continue": _string("Token for the next page; empty on the last page."),
            "remainingItemCount": _integer("Number of items after this page, when known."),
            "resourceVersion": _string("Revision at which the list was read; watch from it."),
            "selfLink": _string("Deprecated and unused."),
        },
    },
}

_GENERATED_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def generate_name(prefix: str) -> str:
    """``prefix`` plus five random characters, as kube's name generator does."""
    suffix = "".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(5))
    return prefix[: 253 - 5] + suffix


def now() -> str:
    """The current time as kube writes timestamps: RFC 3339, UTC, whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
