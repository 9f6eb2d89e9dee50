"""Patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902, via ``jsonpatch``) and
server-side apply.

An applied configuration (server-side apply) is merged by ownership in
:mod:`handlers.owned.managedfields`; here it is only a type.

Strategic merge patch is not offered, as for CRDs: kube answers it with 415 and kubectl
then needs ``--type=merge``. The OpenAPI PATCH operation lists exactly :data:`PATCH_TYPES`,
so kubectl's client-side apply picks merge patch.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer

from handlers.api.errors import ApiError, bad_request

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_JSON_PATCH = "application/apply-patch+json"
"""Not a type kube names (its YAML type carries JSON too); taken as the same."""
APPLY_PATCHES = (APPLY_PATCH, APPLY_JSON_PATCH)
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH)
"""The types kube names (in the OpenAPI, in a 415's message)."""
READ_PATCH_TYPES = (*PATCH_TYPES, APPLY_JSON_PATCH)


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def apply(content_type: str, document: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The patched document; 400 for a malformed patch, 422 for one that does not apply."""
    if content_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise bad_request("a merge patch must be an object")
        patched: dict[str, Any] = merge(document, patch)
        return patched
    if not isinstance(patch, list):
        raise bad_request("a JSON patch must be a JSON array of operations")
    try:
        result = jsonpatch.JsonPatch(patch).apply(document)
    except jsonpatch.InvalidJsonPatch as ex:
        raise bad_request(f"invalid JSON patch: {ex}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as ex:
        raise ApiError(422, "Invalid", f"the JSON patch could not be applied: {ex}") from None
    if not isinstance(result, dict):
        raise ApiError(422, "Invalid", "the JSON patch must leave an object")
    return result
