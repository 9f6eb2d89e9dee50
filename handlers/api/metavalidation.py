"""Object metadata as kube reads it from a request: first its types, refused as Go's decoder
refuses them (:mod:`handlers.api.gotypes`: 400, before anything uses the metadata), then
kube's rules on its values (``ValidateObjectMetaAccessor``: 422, one cause per problem).

A wrong type is a client error that must never reach code that trusts the shape: a label
value that is a number, ``labels`` as a list, an integer name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.api import gotypes, names
from handlers.api.errors import Cause

MAX_ANNOTATIONS_BYTES = 256 * 1024
FIELD_MANAGER_MAX = 128
SUBRESOURCE_MAX = 256


def type_problem(meta: Any) -> str | None:
    """What Go's decoder would say about the types in ``metadata``, or None."""
    if meta is None:
        return None
    if not isinstance(meta, dict):
        return gotypes.cannot(meta, "Go struct field .metadata", "v1.ObjectMeta")
    return gotypes.struct_problem("ObjectMeta", "metadata", meta)


def validate(meta: Mapping[str, Any], *, namespaced: bool) -> list[Cause]:
    """kube's checks on well-typed metadata: names, namespace, labels, annotations,
    finalizers and owner references (managed fields once the field manager has decided
    them: :func:`managed_fields`)."""
    causes: list[Cause] = []

    def invalid(field: str, value: Any, problems: list[str]) -> None:
        if not problems:
            return
        shown = f'"{value}"' if isinstance(value, str) else str(value)
        causes.extend(
            Cause(field, "FieldValueInvalid", f"Invalid value: {shown}: {p}") for p in problems
        )

    name = meta.get("name") or ""
    if name:
        invalid("metadata.name", name, names.dns1123_subdomain(name))
    prefix = meta.get("generateName") or ""
    if prefix and not name:
        invalid("metadata.generateName", prefix, names.dns1123_subdomain(prefix.rstrip("-") or "a"))
    namespace = meta.get("namespace") or ""
    if namespaced and namespace:
        invalid("metadata.namespace", namespace, names.dns1123_label(namespace))
    for key, value in (meta.get("labels") or {}).items():
        invalid("metadata.labels", key, names.qualified_name(key))
        invalid("metadata.labels", value, names.label_value(value))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        invalid("metadata.annotations", key, names.qualified_name(key.lower()))
    if annotations and sum(len(k) + len(v) for k, v in annotations.items()) > MAX_ANNOTATIONS_BYTES:
        causes.append(
            Cause(
                "metadata.annotations",
                "FieldValueTooLong",
                f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes",
            )
        )
    finalizers = meta.get("finalizers") or []
    for finalizer in finalizers:
        invalid("metadata.finalizers", finalizer, names.qualified_name(finalizer))
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        shown = ", ".join(f'"{f}"' for f in finalizers)
        causes.append(
            Cause(
                "metadata.finalizers",
                "FieldValueInvalid",
                f"Invalid value: []string{{{shown}}}: finalizer orphan and foregroundDeletion "
                "cannot be both set",
            )
        )
    if references := meta.get("ownerReferences"):
        causes += _owner_references(references)
    return causes


def _owner_references(references: list[dict[str, Any]]) -> list[Cause]:
    """kube's ValidateOwnerReferences (its causes name the list, not the index)."""
    causes = []
    path = "metadata.ownerReferences"
    controller = ""
    for ref in references:
        api_version = ref.get("apiVersion") or ""
        if not api_version.rpartition("/")[2]:
            causes.append(
                Cause(
                    f"{path}.apiVersion",
                    "FieldValueInvalid",
                    f'Invalid value: "{api_version}": version must not be empty',
                )
            )
        for field in ("kind", "name", "uid"):
            if not ref.get(field):
                causes.append(
                    Cause(
                        f"{path}.{field}",
                        "FieldValueInvalid",
                        'Invalid value: "": must not be empty',
                    )
                )
        if api_version == "v1" and ref.get("kind") == "Event":
            causes.append(
                Cause(
                    path,
                    "FieldValueInvalid",
                    "Invalid value: /v1, Kind=Event: /v1, Kind=Event is disallowed from being "
                    "an owner",
                )
            )
        if ref.get("controller"):
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if controller:
                causes.append(
                    Cause(
                        path,
                        "FieldValueInvalid",
                        'Only one reference can have Controller set to true. Found "true" in '
                        f"references for {controller} and {current}",
                    )
                )
            else:
                controller = current
    return causes


def managed_fields(meta: Mapping[str, Any]) -> list[Cause]:
    """kube's ValidateManagedFields, on the entries the field manager kept (entries it could
    not decode it has already replaced, as kube does)."""
    causes: list[Cause] = []
    entries = meta.get("managedFields") or []
    for i, entry in enumerate(entries):
        path = f"metadata.managedFields[{i}]"
        operation = entry.get("operation") or ""
        if operation not in ("Apply", "Update"):
            causes.append(
                Cause(
                    f"{path}.operation",
                    "FieldValueInvalid",
                    f'Invalid value: "{operation}": must be `Apply` or `Update`',
                )
            )
        fields_type = entry.get("fieldsType") or ""
        if fields_type and fields_type != "FieldsV1":
            causes.append(
                Cause(
                    f"{path}.fieldsType",
                    "FieldValueInvalid",
                    f'Invalid value: "{fields_type}": must be `FieldsV1`',
                )
            )
        causes += field_manager(entry.get("manager") or "", f"{path}.manager")
        if len(entry.get("subresource") or "") > SUBRESOURCE_MAX:
            causes.append(
                Cause(
                    f"{path}.subresource",
                    "FieldValueTooLong",
                    f"Too long: may not be more than {SUBRESOURCE_MAX} bytes",
                )
            )
    return causes


def field_manager(manager: str, path: str) -> list[Cause]:
    """kube's ValidateFieldManager: at most 128 characters, all printable."""
    causes = []
    if len(manager) > FIELD_MANAGER_MAX:
        causes.append(
            Cause(
                path,
                "FieldValueTooLong",
                f"Too long: may not be more than {FIELD_MANAGER_MAX} bytes",
            )
        )
    for i, char in enumerate(manager):
        if not char.isprintable():
            causes.append(
                Cause(
                    path,
                    "FieldValueInvalid",
                    f'Invalid value: "{manager}": invalid character U+{ord(char):04X} '
                    f"(at position {i})",
                )
            )
    return causes
