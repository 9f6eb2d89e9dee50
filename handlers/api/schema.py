"""Structural-schema validation, pruning and defaulting, as kube does for CRDs.

One OpenAPI v3 schema per kind drives this module, the OpenAPI documents and the Task CRD,
so the three cannot disagree. Unknown fields are pruned and reported (``fieldValidation``
decides whether that is an error, a warning or silence); bad values become Invalid causes
worded like kube-apiserver's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.api.errors import Cause
from handlers.api.objectmeta import DEFINITIONS, REF_PREFIX

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


@dataclass(slots=True)
class Outcome:
    """What checking an object found: field errors and pruned unknown fields."""

    causes: list[Cause] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return _JSON_TYPES.get(type(value), "unknown")


def go_value(value: Any) -> str:
    """A value as Go's field errors print it (strings quoted, numbers bare)."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    return f'"{json_type(value)}"'


def is_date_time(value: str) -> bool:
    """RFC 3339 date-time, as the ``date-time`` format requires."""
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def check(schema: dict[str, Any], value: Any, path: str, outcome: Outcome) -> Any:
    """Validate ``value`` against ``schema``; return it pruned and defaulted."""
    if "$ref" in schema:
        schema = DEFINITIONS[schema["$ref"].removeprefix(REF_PREFIX)]
    for part in schema.get("allOf", ()):
        value = check(part, value, path, outcome)
    expected = schema.get("type")
    actual = json_type(value)
    if expected == "number" and actual == "integer":
        actual = "number"
    if expected and actual != expected:
        if value is None and schema.get("nullable"):
            return value
        outcome.causes.append(
            Cause(
                path,
                "FieldValueTypeInvalid",
                f'Invalid value: "{actual}": {path} in body must be of type {expected}: "{actual}"',
            )
        )
        return value
    if expected == "object":
        return _check_object(schema, value, path, outcome)
    if expected == "array":
        items = schema.get("items", {})
        return [check(items, item, f"{path}[{i}]", outcome) for i, item in enumerate(value)]
    _check_scalar(schema, value, path, outcome)
    return value


def _check_object(
    schema: dict[str, Any], value: dict[str, Any], path: str, outcome: Outcome
) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    additional = schema.get("additionalProperties")
    keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields", False)
    out: dict[str, Any] = {}
    for key, item in value.items():
        child = f"{path}.{key}" if path else key
        if key in properties:
            out[key] = check(properties[key], item, child, outcome)
        elif isinstance(additional, dict):
            out[key] = check(additional, item, child, outcome)
        elif keep_unknown or additional is True:
            out[key] = item
        else:
            outcome.unknown.append(child)
    for key, child_schema in properties.items():
        if key not in out and "default" in child_schema:
            out[key] = child_schema["default"]
    for key in schema.get("required", ()):
        if key not in out:
            outcome.causes.append(
                Cause(f"{path}.{key}" if path else key, "FieldValueRequired", "Required value")
            )
    return out


def _check_scalar(schema: dict[str, Any], value: Any, path: str, outcome: Outcome) -> None:
    def invalid(why: str) -> None:
        outcome.causes.append(
            Cause(path, "FieldValueInvalid", f"Invalid value: {go_value(value)}: {why}")
        )

    enum = schema.get("enum")
    if enum is not None and value not in enum:
        supported = ", ".join(go_value(v) for v in enum)
        outcome.causes.append(
            Cause(
                path,
                "FieldValueNotSupported",
                f"Unsupported value: {go_value(value)}: supported values: {supported}",
            )
        )
    if "maximum" in schema and value > schema["maximum"]:
        invalid(f"{path} in body should be less than or equal to {schema['maximum']}")
    if "minimum" in schema and value < schema["minimum"]:
        invalid(f"{path} in body should be greater than or equal to {schema['minimum']}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        invalid(f"{path} in body should be at most {schema['maxLength']} chars long")
    if schema.get("format") == "date-time" and not is_date_time(value):
        invalid(f"{path} in body must be of type date-time: {go_value(value)}")
