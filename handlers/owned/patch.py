"""PATCH with a merge patch, a JSON patch or an applied configuration (server-side apply)."""

from __future__ import annotations

import time
from typing import Any

import orjson

from handlers.api import patching
from handlers.api.contract import ApiRequest, Deps, ObjectResult
from handlers.api.errors import ApiError, bad_request
from handlers.owned import create
from handlers.owned.managedfields import KUBECTL, LAST_APPLIED, Operation
from handlers.owned.validation import checked, decoded_metadata
from handlers.owned.writing import current, replace

PATCH_RETRY_SECONDS = 30.0  # kube retries a conflicting patch until its request times out


def handle(request: ApiRequest, deps: Deps) -> ObjectResult:
    """The patched object; an apply creates a missing object (201) where the strategy allows.

    Re-applied to the new object after a concurrent write, so only a resourceVersion the
    patch itself sets can conflict (a precondition, as in kube)."""
    kind, name = request.kind, request.name or ""
    applying = request.content_type in patching.APPLY_PATCHES
    if "force" in request.query and not applying:
        raise ApiError(
            422,
            "Invalid",
            'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified '
            "for non-apply patch",
        )
    if applying:
        _check_applied(request)
    creates = applying and kind.strategy(request.subresource).allow_create_on_apply
    give_up = time.monotonic() + PATCH_RETRY_SECONDS
    while time.monotonic() < give_up:
        if creates and deps.store.get(kind.plural, request.namespace or "", name) is None:
            request.authorize("create")  # apply creates what is missing, if the caller may
            try:
                return _apply_create(request, deps)
            except ApiError as ex:
                if ex.reason != "AlreadyExists":
                    raise
                continue
        found = current(request, deps)
        live = orjson.loads(found.body)
        if applying:
            operation = Operation.of(request, deps)
            patched = operation.applied(live, request.body, force=_forced(request))
            _keep_last_applied(request, patched)
        else:
            patched = patching.apply(request.content_type, live, request.body)
        obj, warnings = checked(request, patched, stored=live)
        version = obj["metadata"].get("resourceVersion")
        if version is not None and version != str(found.revision):
            raise kind.resource.conflict(name)  # the patch set a resourceVersion: a precondition
        try:
            return replace(request, deps, found, obj, warnings, applied=applying)
        except ApiError as ex:
            if ex.reason != "Conflict":
                raise
    raise kind.resource.conflict(name)


def _check_applied(request: ApiRequest) -> None:
    """What kube requires of an applied configuration before merging it."""
    if not request.param("fieldManager"):
        raise ApiError(
            422,
            "Invalid",
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
            "for apply patch",
        )
    body = request.body
    if not isinstance(body, dict):
        raise bad_request("an applied configuration must be an object")
    decoded_metadata(request, body)
    given = body.get("apiVersion") or ""
    if given != request.kind.api_version or not body.get("kind"):
        raise bad_request(
            "Incorrect version specified in apply patch. Specified patch version: "
            f"{given if body.get('kind') else ''}, expected: {request.kind.api_version}"
        )


def _forced(request: ApiRequest) -> bool:
    return request.flag("force")


def _apply_create(request: ApiRequest, deps: Deps) -> ObjectResult:
    """An apply to a missing object: its configuration is the new object, owned by it."""
    obj = Operation.of(request, deps).applied(None, request.body, force=_forced(request))
    checked_obj, warnings = checked(request, obj)
    return create.created(request, deps, checked_obj, warnings)


def _keep_last_applied(request: ApiRequest, patched: dict[str, Any]) -> None:
    """kubectl's server-side apply over a client-side-applied object: like kube-apiserver,
    rewrite the last-applied annotation to the applied configuration, so that a later
    client-side apply computes its patch against what was really applied."""
    annotations = (patched.get("metadata") or {}).get("annotations") or {}
    if request.param("fieldManager") == KUBECTL and LAST_APPLIED in annotations:
        applied = dict(request.body)
        applied_meta = dict(applied.get("metadata") or {})
        applied_annotations = {
            k: v for k, v in (applied_meta.get("annotations") or {}).items() if k != LAST_APPLIED
        }
        applied["metadata"] = {**applied_meta, "annotations": applied_annotations}
        annotations[LAST_APPLIED] = orjson.dumps(applied).decode()
