"""The Go types of the kube structs this server reads from JSON, and what Go's decoder says
when a value does not fit (``json: cannot unmarshal ... into Go struct field ...``).

kube decodes a body into typed structs before anything looks at it; checking the same types
first means no code here ever meets a label that is a number or a ``labels`` that is a list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

_INT64 = range(-(2**63), 2**63)

STRUCTS: dict[str, dict[str, str]] = {
    "ObjectMeta": {
        "name": "string",
        "generateName": "string",
        "namespace": "string",
        "selfLink": "string",
        "uid": "types.UID",
        "resourceVersion": "string",
        "generation": "int64",
        "creationTimestamp": "v1.Time",
        "deletionTimestamp": "v1.Time",
        "deletionGracePeriodSeconds": "int64",
        "labels": "map[string]string",
        "annotations": "map[string]string",
        "finalizers": "[]string",
        "ownerReferences": "[]v1.OwnerReference",
        "managedFields": "[]v1.ManagedFieldsEntry",
    },
    "OwnerReference": {
        "apiVersion": "string",
        "kind": "string",
        "name": "string",
        "uid": "types.UID",
        "controller": "bool",
        "blockOwnerDeletion": "bool",
    },
    "DeleteOptions": {
        "kind": "string",
        "apiVersion": "string",
        "gracePeriodSeconds": "int64",
        "preconditions": "v1.Preconditions",
        "orphanDependents": "bool",
        "propagationPolicy": "v1.DeletionPropagation",
        "dryRun": "[]string",
        "ignoreStoreReadErrorWithClusterBreakingPotential": "bool",
    },
    "Preconditions": {"uid": "types.UID", "resourceVersion": "string"},
    "ManagedFieldsEntry": {
        "manager": "string",
        "operation": "v1.ManagedFieldsOperationType",
        "apiVersion": "string",
        "time": "v1.Time",
        "fieldsType": "string",
        "fieldsV1": "v1.FieldsV1",
        "subresource": "string",
    },
}
_STRINGS = frozenset(
    {"string", "types.UID", "v1.Time", "v1.ManagedFieldsOperationType", "v1.DeletionPropagation"}
)


def struct_problem(struct: str, path: str, obj: Mapping[str, Any]) -> str | None:
    """The first field of ``obj`` whose value Go would not decode into ``struct``, worded as
    Go words it (``path`` is the JSON path Go names the field by).

    Every write reads its metadata through here: a body that fits, the common case, passes
    one quick check; the wording is worked out only for one that does not."""
    if _fits_struct(struct, obj):
        return None
    for key, value in obj.items():
        wanted = STRUCTS[struct].get(key)
        if wanted is None or value is None:
            continue  # unknown fields are the schema's; null is Go's zero value
        field = f"{path}.{key}" if path else key
        if problem := _value_problem(wanted, value, f"Go struct field {struct}.{field}", field):
            return problem
    return None


Fits = Callable[[Any], bool]


def _fits_struct(struct: str, obj: Mapping[str, Any]) -> bool:
    fields = _FITS[struct]
    return all(
        value is None or (fits := fields.get(key)) is None or fits(value)
        for key, value in obj.items()
    )


def _fits(wanted: str) -> Fits:
    """Whether a value decodes into the Go type ``wanted``: the fast half of
    :func:`_value_problem`, which must agree with it."""
    struct = wanted.removeprefix("v1.")
    if struct in STRUCTS:
        return lambda value: isinstance(value, dict) and _fits_struct(struct, value)
    if wanted.startswith("map[string]"):
        item = _fits(wanted.removeprefix("map[string]"))
        return lambda value: isinstance(value, dict) and all(map(item, value.values()))
    if wanted.startswith("[]"):
        item = _fits(wanted.removeprefix("[]"))
        return lambda value: isinstance(value, list) and all(map(item, value))
    if wanted in _STRINGS and wanted != "v1.Time":
        return lambda value: isinstance(value, str)
    return lambda value: _scalar(wanted, value, "") is None


def _value_problem(wanted: str, value: Any, where: str, path: str) -> str | None:
    if wanted.removeprefix("v1.") in STRUCTS:
        if not isinstance(value, dict):
            return cannot(value, where, wanted)
        return struct_problem(wanted.removeprefix("v1."), path, value)
    if wanted.startswith("map[string]"):
        if not isinstance(value, dict):
            return cannot(value, where, wanted)
        item = wanted.removeprefix("map[string]")
        return next((p for v in value.values() if (p := _scalar(item, v, where))), None)
    if wanted.startswith("[]"):
        if not isinstance(value, list):
            return cannot(value, where, wanted)
        item = wanted.removeprefix("[]")
        struct = item.removeprefix("v1.")
        for element in value:
            if struct in STRUCTS:
                if not isinstance(element, dict):
                    return cannot(element, where, item)
                if problem := struct_problem(struct, path, element):
                    return problem
            elif problem := _scalar(item, element, where):
                return problem
        return None
    return _scalar(wanted, value, where)


def _scalar(wanted: str, value: Any, where: str) -> str | None:
    if wanted in _STRINGS:
        if not isinstance(value, str):
            return cannot(value, where, wanted)
        if wanted == "v1.Time" and not _rfc3339(value):
            return f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": not an RFC 3339 time'
        return None
    if wanted == "int64":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return cannot(value, where, wanted)
        if isinstance(value, float) or value not in _INT64:
            return cannot(value, where, wanted, shown=True)
        return None
    if wanted == "bool":
        return None if isinstance(value, bool) else cannot(value, where, wanted)
    if wanted == "v1.FieldsV1":
        return None if isinstance(value, dict) else cannot(value, where, wanted)
    raise AssertionError(f"no rule for {wanted}")  # a mistake in the tables above


def cannot(value: Any, where: str, wanted: str, *, shown: bool = False) -> str:
    """Go's UnmarshalTypeError, in its words."""
    what = _json_type(value) + (f" {value}" if shown else "")
    return f"json: cannot unmarshal {what} into {where} of type {wanted}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _rfc3339(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return "T" in value


_FITS = {
    struct: {key: _fits(wanted) for key, wanted in fields.items()}
    for struct, fields in STRUCTS.items()
}
