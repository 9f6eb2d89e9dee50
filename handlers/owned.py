"""The verbs of kinds this server stores itself, written once for all of them.

ClusterTask and CustomTask differ only in their declaration (scope, names); each of their
verb modules binds one function of this module as its ``handle``.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from handlers import objectmeta, patching, schema, watching
from handlers.contract import ApiRequest, Deps, ListResult, ObjectResult, WatchResult
from handlers.errors import ApiError, Cause, bad_request, expired, too_large_resource_version
from handlers.kinds import Kind
from handlers.params import non_negative
from handlers.selectors import (
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
from store import AlreadyExists, Conflict, Expired, NotFound, Predicate, Row, encode

FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
_SERVER_OWNED = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "selfLink")
_CONTINUE_VERSION = "meta.k8s.io/v1"
_LATEST = -1  # a continue token's revision meaning "go on at the latest state"
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)


# create, get, update, delete


def create(request: ApiRequest, deps: Deps) -> ObjectResult:
    """POST to the collection, or to an item path with the name taken from the URL."""
    kind = request.kind
    obj, warnings = _admit(request, request.body)
    meta = obj["metadata"]
    if "resourceVersion" in meta:
        raise bad_request("resourceVersion should not be set on objects to be created")
    if not meta.get("name"):
        if not meta.get("generateName"):
            raise kind.resource.invalid(
                "",
                [
                    Cause(
                        "metadata.name",
                        "FieldValueRequired",
                        "Required value: name or generateName is required",
                    )
                ],
            )
        meta["name"] = objectmeta.generate_name(meta["generateName"])
    for key in _SERVER_OWNED:
        meta.pop(key, None)
    meta.update(uid=str(uuid.uuid4()), creationTimestamp=objectmeta.now(), generation=1)
    if kind.has_status:
        obj.pop("status", None)  # written only through /status, as for CRDs
    namespace, name = request.namespace or "", meta["name"]
    if _dry_run(request.param("dryRun")):
        if deps.store.get(kind.plural, namespace, name) is not None:
            raise kind.resource.already_exists(name)
        return ObjectResult(orjson.dumps(obj), 201, warnings)
    try:
        row = deps.store.create(kind.plural, namespace, name, obj, _field_values(kind, obj))
    except AlreadyExists:
        raise kind.resource.already_exists(name) from None
    return ObjectResult(row.body, 201, warnings)


def get(request: ApiRequest, deps: Deps) -> ObjectResult:
    """GET one object."""
    return ObjectResult(_current(request, deps).body)


def update(request: ApiRequest, deps: Deps) -> ObjectResult:
    """PUT: replace the object if the body's resourceVersion is still current."""
    kind, name = request.kind, request.name or ""
    obj, warnings = _admit(request, request.body)
    version = obj["metadata"].get("resourceVersion")
    if not version:
        raise kind.resource.invalid(
            name,
            [
                Cause(
                    "metadata.resourceVersion",
                    "FieldValueInvalid",
                    "Invalid value: 0x0: must be specified for an update",
                )
            ],
        )
    current = _current(request, deps)
    if version != str(current.revision):
        raise kind.resource.conflict(name)
    return _replace(request, deps, current, obj, warnings)


def patch(request: ApiRequest, deps: Deps) -> ObjectResult:
    """PATCH with a merge patch, a JSON patch or an applied configuration (which creates a
    missing object with 201); re-applied to the new object after a concurrent write, so only
    a resourceVersion the patch itself sets can conflict (a precondition, as in kube)."""
    kind, name = request.kind, request.name or ""
    applying = request.content_type == patching.APPLY_PATCH
    if request.param("force") and not applying:
        raise ApiError(
            422,
            "Invalid",
            'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified '
            "for non-apply patch",
        )
    if applying and not request.param("fieldManager"):
        raise ApiError(
            422,
            "Invalid",
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
            "for apply patch",
        )
    give_up = time.monotonic() + PATCH_RETRY_SECONDS
    while time.monotonic() < give_up:
        if applying and request.subresource is None:
            found = deps.store.get(kind.plural, request.namespace or "", name)
            if found is None:  # apply creates what is missing, if the caller may create
                request.authorize("create")
                try:
                    return create(request, deps)
                except ApiError as ex:
                    if ex.reason != "AlreadyExists":
                        raise
                    continue
        current = _current(request, deps)
        patched = patching.apply(request.content_type, orjson.loads(current.body), request.body)
        if applying:
            _keep_last_applied(request, patched)
        version = (patched.get("metadata") or {}).get("resourceVersion")
        if version is not None and version != str(current.revision):
            raise kind.resource.conflict(name)  # the patch set a resourceVersion: a precondition
        obj, warnings = _admit(request, patched)
        try:
            return _replace(request, deps, current, obj, warnings)
        except ApiError as ex:
            if ex.reason != "Conflict":
                raise
    raise kind.resource.conflict(name)


PATCH_RETRY_SECONDS = 30.0  # kube retries a conflicting patch until its request times out
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _keep_last_applied(request: ApiRequest, patched: dict[str, Any]) -> None:
    """kubectl's server-side apply over a client-side-applied object: like kube-apiserver,
    rewrite the last-applied annotation to the applied configuration, so that a later
    client-side apply computes its patch against what was really applied."""
    annotations = patched.get("metadata", {}).get("annotations") or {}
    if request.param("fieldManager") == "kubectl" and LAST_APPLIED in annotations:
        applied = dict(request.body)
        applied_meta = dict(applied.get("metadata") or {})
        applied_annotations = {
            k: v for k, v in (applied_meta.get("annotations") or {}).items() if k != LAST_APPLIED
        }
        applied["metadata"] = {**applied_meta, "annotations": applied_annotations}
        annotations[LAST_APPLIED] = orjson.dumps(applied).decode()


def _replace(
    request: ApiRequest, deps: Deps, current: Row, obj: dict[str, Any], warnings: tuple[str, ...]
) -> ObjectResult:
    """Store ``obj`` in place of ``current``: server-owned metadata carried over, generation
    bumped on spec changes, nothing written for a no-op."""
    kind, name = request.kind, request.name or ""
    old = orjson.loads(current.body)
    meta, old_meta = obj["metadata"], old["metadata"]
    if meta.get("uid") and meta["uid"] != old_meta["uid"]:
        raise kind.resource.invalid(
            name,
            [
                Cause(
                    "metadata.uid",
                    "FieldValueInvalid",
                    f'Invalid value: "{meta["uid"]}": field is immutable',
                )
            ],
        )
    for key in _SERVER_OWNED:
        meta.pop(key, None)
        if key in old_meta:
            meta[key] = old_meta[key]
    if request.subresource == "status":
        obj = {**old, "status": obj.get("status", {})}
        meta = obj["metadata"]
    elif kind.has_status:
        obj.pop("status", None)
        if "status" in old:
            obj["status"] = old["status"]
    if obj.get("spec") != old.get("spec"):
        meta["generation"] = old_meta.get("generation", 1) + 1
    if _dry_run(request.param("dryRun")):
        return ObjectResult(orjson.dumps(obj), 200, warnings)
    if encode(obj) == encode(old):
        return ObjectResult(current.body, 200, warnings)
    namespace = request.namespace or ""
    try:
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            # the last finalizer is gone: the deletion completes
            row = deps.store.delete(kind.plural, namespace, name, current.revision)
            return ObjectResult(row.body, 200, warnings)
        row = deps.store.update(
            kind.plural,
            namespace,
            name,
            current.revision,
            obj,
            _field_values(kind, obj),
        )
    except NotFound:
        raise kind.resource.not_found(name) from None
    except Conflict:
        raise kind.resource.conflict(name) from None
    return ObjectResult(row.body, 200, warnings)


def delete(request: ApiRequest, deps: Deps) -> ObjectResult:
    """DELETE one object; answers 200 with its last state (or, with finalizers, the object
    marked for deletion)."""
    options = _delete_options(request)
    return ObjectResult(
        _delete_one(request.kind, request.namespace or "", request.name or "", options, deps)
    )


def delete_collection(request: ApiRequest, deps: Deps) -> ListResult:
    """DELETE on the collection: every object the selectors match, as the namespace
    controller needs; answers the list of what was deleted (or marked for deletion)."""
    kind = request.kind
    options = _delete_options(request)
    labels = parse_label_selector(request.param("labelSelector"))
    fields = parse_field_selector(request.param("fieldSelector"), kind.field_selectors)
    page = deps.store.list(kind.plural, request.namespace, match=_matcher(labels, fields))
    deleted = []
    for row in page.rows:
        try:
            deleted.append(_delete_one(kind, row.namespace, row.name, options, deps))
        except ApiError as ex:
            if ex.reason != "NotFound":  # gone meanwhile: nothing left to delete
                raise
    return ListResult(deps.store.revision(), deleted)


def _delete_one(
    kind: Kind, namespace: str, name: str, options: Mapping[str, Any], deps: Deps
) -> bytes:
    """Delete, or mark for deletion when finalizers remain; retried on concurrent writes."""
    preconditions = options.get("preconditions") or {}
    dry_run = "All" in options.get("dryRun", ())
    for _ in range(5):
        current = deps.store.get(kind.plural, namespace, name)
        if current is None:
            raise kind.resource.not_found(name)
        obj = orjson.loads(current.body)
        meta = obj["metadata"]
        for field, actual in (("uid", meta["uid"]), ("resourceVersion", str(current.revision))):
            wanted = preconditions.get(field)
            if wanted is not None and wanted != actual:
                label = "UID" if field == "uid" else "ResourceVersion"
                raise kind.resource.conflict(
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, "
                    f"{label} in object meta: {actual}",
                )
        try:
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp"):
                    return current.body  # already being deleted
                meta.update(
                    deletionTimestamp=objectmeta.now(),
                    deletionGracePeriodSeconds=0,
                    generation=meta.get("generation", 1) + 1,
                )
                if dry_run:
                    return orjson.dumps(obj)
                fields = _field_values(kind, obj)
                return deps.store.update(
                    kind.plural, namespace, name, current.revision, obj, fields
                ).body
            if dry_run:
                return current.body
            return deps.store.delete(kind.plural, namespace, name, current.revision).body
        except NotFound:
            raise kind.resource.not_found(name) from None
        except Conflict:
            continue  # changed between read and write: look again
    raise kind.resource.conflict(name)


# list


def list_objects(request: ApiRequest, deps: Deps) -> ListResult:
    """LIST with label and field selectors, paging and resourceVersion semantics."""
    kind = request.kind
    labels = parse_label_selector(request.param("labelSelector"))
    fields = parse_field_selector(request.param("fieldSelector"), kind.field_selectors)
    limit = _limit(request.param("limit"))
    version, token = request.param("resourceVersion"), request.param("continue")
    revision: int | None = None
    after: tuple[str, str] | None = None
    if token:
        if version:
            raise bad_request("specifying resource version is not allowed when using continue")
        revision, after = decode_continue(token)
        if revision == _LATEST:
            revision = None
    elif version not in ("", "0"):
        wanted = _revision(version)
        current = deps.store.revision()
        if wanted > current:
            raise too_large_resource_version(wanted, current)
        exact = limit is not None and request.param("resourceVersionMatch") != "NotOlderThan"
        revision = wanted if exact else None

    try:
        page = deps.store.list(
            kind.plural,
            request.namespace,
            revision=revision,
            after=after,
            limit=limit,
            match=_matcher(labels, fields),
        )
    except Expired:
        if token and after is not None:
            raise expired(_CONTINUE_EXPIRED, encode_continue(_LATEST, after)) from None
        raise expired("The resourceVersion for the provided list is too old.") from None
    next_token = encode_continue(page.revision, page.resume_after) if page.resume_after else ""
    return ListResult(page.revision, [row.body for row in page.rows], next_token)


def _matcher(labels: LabelSelector, fields: FieldSelector) -> Predicate | None:
    """The store-side filter for the selectors, or None when they select everything."""
    if not labels.requirements and not fields.requirements:
        return None

    def match(row: Row) -> bool:
        if labels.requirements and not labels.matches(row.labels()):
            return False
        values = {**row.fields(), "metadata.name": row.name, "metadata.namespace": row.namespace}
        return fields.matches(lambda field: values.get(field, ""))

    return match


def encode_continue(revision: int, after: tuple[str, str]) -> str:
    """An opaque continue token in kube's shape; revision -1 continues at the latest state."""
    raw = orjson.dumps({"v": _CONTINUE_VERSION, "rv": revision, "start": "/".join(after)})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    """The revision and key a continue token resumes from; 400 when it is not one of ours."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        revision, start = data["rv"], data["start"]
        if data.get("v") != _CONTINUE_VERSION or not isinstance(revision, int):
            raise ValueError("unknown token version")
        namespace, sep, name = start.partition("/")
        if not sep or not name or (revision <= 0 and revision != _LATEST):
            raise ValueError("bad start key")
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as ex:
        raise bad_request(f"continue key is not valid: {ex}") from None
    return revision, (namespace, name)


def watch(request: ApiRequest, deps: Deps) -> WatchResult:
    """WATCH with the same selectors as LIST."""
    labels = parse_label_selector(request.param("labelSelector"))
    fields = parse_field_selector(request.param("fieldSelector"), request.kind.field_selectors)
    return watching.watch(request, deps, _matcher(labels, fields))


# shared steps


def _current(request: ApiRequest, deps: Deps) -> Row:
    kind, name = request.kind, request.name or ""
    row = deps.store.get(kind.plural, request.namespace or "", name)
    if row is None:
        raise kind.resource.not_found(name)
    return row


def _admit(request: ApiRequest, body: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Check a written object's type, namespace, name, schema and metadata.

    Returns it pruned and defaulted, with the warnings to send."""
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


def _field_values(kind: Kind, obj: Mapping[str, Any]) -> dict[str, str]:
    return {path: getter(obj) for path, getter in kind.selectable_fields.items()}


def _dry_run(value: str) -> bool:
    if value in ("", "All"):
        return value == "All"
    raise bad_request(f'Invalid value: "{value}": supported values: "All"')


def _delete_options(request: ApiRequest) -> dict[str, Any]:
    body = request.body if request.body is not None else {}
    if not isinstance(body, dict):
        raise bad_request("the request body must be a DeleteOptions object")
    options = dict(body)
    if request.param("dryRun"):
        options.setdefault("dryRun", [request.param("dryRun")])
    dry = options.get("dryRun") or []
    if not isinstance(dry, list) or any(v != "All" for v in dry):
        raise bad_request(f'Invalid value: {dry!r}: supported values: "All"')
    policy = options.get("propagationPolicy") or request.param("propagationPolicy")
    if policy and policy not in ("Orphan", "Background", "Foreground"):
        raise ApiError(
            422,
            "Invalid",
            f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
            f'"{policy}": supported values: "Foreground", "Background", "Orphan"',
        )
    if not isinstance(options.get("preconditions") or {}, dict):
        raise bad_request("preconditions must be an object")
    return options


def _limit(value: str) -> int | None:
    """The page size; absent or 0 means no limit."""
    return (non_negative(value, "limit") or None) if value else None


def _revision(value: str) -> int:
    return non_negative(value, "resource version")
