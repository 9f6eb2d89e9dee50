"""Object metadata: its schema (for validation and OpenAPI) and the rules kube applies to it.

The definitions carry names of our own (``DEFS_PREFIX``), not upstream's
``io.k8s.apimachinery…`` names, so the aggregator never has to rename a colliding definition
when it merges our OpenAPI document into the cluster's.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from handlers.api.errors import Cause
from handlers.api.selectors import valid_label_key, valid_label_value

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

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUBDOMAIN_HELP = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_GENERATED_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_ANNOTATIONS_BYTES = 256 * 1024


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid object name (a DNS-1123 subdomain), or None."""
    if len(name) > 253:
        return "must be no more than 253 characters"
    if not _SUBDOMAIN.match(name):
        return _SUBDOMAIN_HELP
    return None


def generate_name(prefix: str) -> str:
    """``prefix`` plus five random characters, as kube's name generator does."""
    suffix = "".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(5))
    return prefix[: 253 - 5] + suffix


def now() -> str:
    """The current time as kube writes timestamps: RFC 3339, UTC, whole seconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate(meta: Mapping[str, Any]) -> list[Cause]:
    """kube's checks on names, generateName, labels and annotations."""
    causes: list[Cause] = []

    def invalid(field: str, value: str, why: str) -> None:
        causes.append(Cause(field, "FieldValueInvalid", f'Invalid value: "{value}": {why}'))

    name = meta.get("name", "")
    if name and (why := name_problem(name)):
        invalid("metadata.name", name, why)
    prefix = meta.get("generateName", "")
    if prefix and not name and (why := name_problem(prefix.rstrip("-") or "a")):
        invalid("metadata.generateName", prefix, why)
    for key, value in (meta.get("labels") or {}).items():
        if not valid_label_key(key):
            invalid(
                "metadata.labels",
                key,
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character",
            )
        if not valid_label_value(value):
            invalid(
                "metadata.labels",
                value,
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
            )
    annotations = meta.get("annotations") or {}
    for key in annotations:
        if not valid_label_key(key.lower()):
            invalid(
                "metadata.annotations",
                key,
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character",
            )
    if sum(len(k) + len(v) for k, v in annotations.items()) > _MAX_ANNOTATIONS_BYTES:
        causes.append(
            Cause(
                "metadata.annotations",
                "FieldValueTooLong",
                f"Too long: must have at most {_MAX_ANNOTATIONS_BYTES} bytes",
            )
        )
    return causes
