"""A written body checked as kube checks one before any strategy sees it: its type, group
version and kind, namespace and name against the URL, the kind's structural schema (pruning
and defaulting, unknown fields by ``fieldValidation``) and object metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.api import metavalidation, schema
from handlers.api.contract import ApiRequest
from handlers.api.errors import bad_request


def checked(
    request: ApiRequest, body: Any, *, stored: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``body`` pruned and defaulted, with the warnings to send; 400 or 422 when it is bad.

    managedFields that a patch left as the ``stored`` object had them (the very same
    value) were checked when stored: they are carried over unchecked."""
    kind = request.kind
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a {kind.kind} object")
    mode = request.options.field_validation or "Warn"
    for key, expected in (("apiVersion", kind.api_version), ("kind", kind.kind)):
        given = body.get(key)
        if given and given != expected:
            word = "API version" if key == "apiVersion" else "kind"
            raise bad_request(
                f"the {word} in the data ({given}) does not match the expected {word} ({expected})"
            )
    body, kept = _without_stored_managers(body, stored)
    meta = decoded_metadata(request, body)
    _check_scope(request, meta)
    outcome = schema.Outcome()
    obj = schema.check(kind.schema(), {**body, "metadata": meta}, "", outcome)
    if kept is not None:
        obj["metadata"]["managedFields"] = kept
    name = meta.get("name") or request.name or ""
    outcome.unknown.sort()
    if outcome.unknown and mode == "Strict":
        raise bad_request(
            "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in outcome.unknown)
        )
    causes = outcome.causes + metavalidation.validate(obj["metadata"], namespaced=kind.namespaced)
    if causes:
        raise kind.resource.invalid(name, causes)
    obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
    warnings = () if mode == "Ignore" else tuple(f'unknown field "{f}"' for f in outcome.unknown)
    return obj, warnings


def _without_stored_managers(
    body: dict[str, Any], stored: Mapping[str, Any] | None
) -> tuple[dict[str, Any], Any]:
    """``body`` without the managedFields it carries unchanged from ``stored``, and those."""
    metadata = body.get("metadata")
    if not isinstance(metadata, dict) or stored is None:
        return body, None
    managers = metadata.get("managedFields")
    if managers is None or managers is not stored["metadata"].get("managedFields"):
        return body, None
    rest = {k: v for k, v in metadata.items() if k != "managedFields"}
    return {**body, "metadata": rest}, managers


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


def decoded_metadata(request: ApiRequest, body: dict[str, Any]) -> dict[str, Any]:
    """The body's metadata if Go's decoder would take its types; kube's 400 otherwise, worded
    as kube words a body it cannot decode."""
    meta = body.get("metadata")
    if problem := metavalidation.type_problem(meta):
        kind = request.kind
        raise bad_request(
            f'{kind.kind}.{kind.group} in version "{kind.version}" cannot be handled as a '
            f"{kind.kind}: {problem}"
        )
    return meta or {}
