"""PATCH bodies as the fake cluster applies them: JSON merge patch, JSON patch and apply.

The fake's own, not the server's ``handlers/``: the fake checks that code, so a bug there must
not be mirrored here. Merge patch is RFC 7386 written here; JSON patch (RFC 6902) uses the
``jsonpatch`` library. Apply is modelled simply: the applied configuration (JSON-shaped YAML
only) is merge-patched into the live object, with no field ownership and no create. A strategic
merge patch, which kube takes for its own kinds only, is a merge patch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonpointer

from tests.fakes.errors import StatusError, bad_request, unsupported_media_type

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: a patch that is an object changes the target member by member (``null``
    removes a member, an object merges into it, anything else replaces it); a patch that is
    not an object replaces the whole target. Neither argument is changed."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        elif isinstance(value, Mapping):
            result[name] = merge_patch(result.get(name), value)
        else:
            result[name] = value
    return result


def json_patch(document: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902 operations applied to a copy of ``document``: kube's 400 for a body that is no
    JSON patch, 422 for operations that do not apply (a failed ``test``, a missing path)."""
    if not isinstance(operations, list):
        raise bad_request("a JSON patch must be a JSON array of operations")
    try:
        patched = jsonpatch.JsonPatch(operations).apply(document)
    except jsonpatch.InvalidJsonPatch as error:
        raise bad_request(f"invalid JSON patch: {error}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
        raise StatusError(422, "Invalid", f"the JSON patch could not be applied: {error}") from None
    if not isinstance(patched, dict):
        raise StatusError(422, "Invalid", "the JSON patch must leave an object")
    return patched


def check_media_type(media_type: str, *, strategic: bool) -> None:
    """kube's 415 unless the resource takes PATCHes in ``media_type``: ``strategic`` when it
    takes strategic merge patches (kube's own kinds do, custom resources do not). kube checks
    this before it reads the object, so a missing object is 415 here too, not 404."""
    accepted = [JSON_PATCH, MERGE_PATCH]
    if strategic:
        accepted.append(STRATEGIC_MERGE_PATCH)
    accepted.append(APPLY_PATCH)
    if media_type not in accepted:
        raise unsupported_media_type(accepted)


def patched(
    media_type: str, document: dict[str, Any], body: Any, *, strategic: bool
) -> dict[str, Any]:
    """``document`` after the PATCH ``body`` sent as ``media_type`` (see
    :func:`check_media_type`); a merge or apply body must be an object (400)."""
    check_media_type(media_type, strategic=strategic)
    if media_type == JSON_PATCH:
        return json_patch(document, body)
    if not isinstance(body, dict):
        raise bad_request(f"the body of a {media_type} PATCH must be a JSON object")
    merged: dict[str, Any] = merge_patch(document, body)
    return merged
