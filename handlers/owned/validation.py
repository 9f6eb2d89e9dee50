"""A written body checked as kube checks one before any strategy sees it: its type, group
version and kind, namespace and name against the URL, the kind's structural schema (pruning
and defaulting, unknown fields by ``fieldValidation``) and object metadata."""

from __future__ import annotations

from typing import Any

from handlers.api import objectmeta, schema
from handlers.api.contract import ApiRequest
from handlers.api.errors import bad_request

FIELD_VALIDATION = ("Ignore", "Warn", "Strict")


def checked(request: ApiRequest, body: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``body`` pruned and defaulted, with the warnings to send; 400 or 422 when it is bad."""
    kind = request.kind
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a {kind.kind} object")
    mode = request.param("fieldValidation", "Warn")
    if mode not in FIELD_VALIDATION:
        raise bad_request(
            f'invalid fieldValidation value "{mode}": must be one of Ignore, Warn or Strict'
        )
    for key, expected in (("apiVersion", kind.api_version), ("kind", kind.kind)):
        given = body.get(key)
        if given and given != expected:
            word = "API version" if key == "apiVersion" else "kind"
            raise bad_request(
                f"the {word} in the data ({given}) does not match the expected {word} ({expected})"
            )
    meta = body.get("metadata") or {}
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    _check_scope(request, meta)
    outcome = schema.Outcome()
    obj = schema.check(kind.schema(), {**body, "metadata": meta}, "", outcome)
    name = meta.get("name") or request.name or ""
    outcome.unknown.sort()
    if outcome.unknown and mode == "Strict":
        raise bad_request(
            "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in outcome.unknown)
        )
    causes = outcome.causes + objectmeta.validate(obj["metadata"])
    if causes:
        raise kind.resource.invalid(name, causes)
    obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
    warnings = () if mode == "Ignore" else tuple(f'unknown field "{f}"' for f in outcome.unknown)
    return obj, warnings


def _check_scope(request: ApiRequest, meta: dict[str, Any]) -> None:
    """Namespace and name from the URL win; a contradicting body is a 400, as in kube."""
    namespace = request.namespace or ""
    given = meta.get("namespace") or ""
    if not request.kind.namespaced:
        meta.pop("namespace", None)
    elif given and given != namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    else:
        meta["namespace"] = namespace
    if request.name:
        if meta.get("name") and meta["name"] != request.name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({request.name})"
            )
        meta["name"] = request.name
