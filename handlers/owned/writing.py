"""The steps the verbs share on one stored object: read it, replace it (where update and patch
end), delete it, and the options that govern writes (dry-run, delete options).

The kind's strategy for the resource or subresource addressed prepares and validates each
change; the rest is the same for every kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from handlers.api import gotypes, metavalidation, objectmeta, params
from handlers.api.admission import CREATE, DELETE, UPDATE, Attributes
from handlers.api.contract import ApiRequest, Deps, ObjectResult
from handlers.api.errors import Cause, bad_request
from handlers.owned.managedfields import Operation
from handlers.owned.validation import checked
from store import Conflict, NotFound, Row, encode

SERVER_OWNED = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "selfLink")


def current(request: ApiRequest, deps: Deps) -> Row:
    """The object the request names; 404 when there is none."""
    kind, name = request.kind, request.name or ""
    row = deps.store.get(kind.plural, request.namespace or "", name)
    if row is None:
        raise kind.resource.not_found(name)
    return row


def replace(
    request: ApiRequest,
    deps: Deps,
    current: Row,
    obj: dict[str, Any],
    warnings: tuple[str, ...],
    *,
    applied: bool = False,
) -> ObjectResult:
    """Store ``obj`` in place of ``current``: server-owned metadata carried over, its
    managers recorded (already done when ``applied``), the strategy's preparation and
    validation, generation bumped on spec changes, nothing written for a no-op, and the
    deletion completed when the last finalizer is gone."""
    kind, name = request.kind, request.name or ""
    strategy = kind.strategy(request.subresource)
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
    for key in SERVER_OWNED:
        meta.pop(key, None)
        if key in old_meta:
            meta[key] = old_meta[key]
    if not applied:
        Operation.of(request, deps).updated(old, obj)
    obj, mutations = mutated(request, deps, UPDATE, obj, old)
    warnings += mutations
    meta = obj["metadata"]
    managed = meta.get("managedFields")
    obj = strategy.prepare_for_update(obj, old)
    meta = obj["metadata"]
    if meta.get("managedFields") != managed:  # the strategy kept the old metadata
        meta = obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
        if managed:
            meta["managedFields"] = managed
    if obj.get("spec") != old.get("spec"):
        meta["generation"] = old_meta.get("generation", 1) + 1
    if causes := strategy.validate_update(obj, old) + metavalidation.managed_fields(meta):
        raise kind.resource.invalid(name, causes)
    strategy.canonicalize(obj)
    warnings += admitted(request, deps, UPDATE, obj, old)
    if request.options.dry_run:
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
            kind.field_values(obj),
            kind.search_document(obj),
        )
    except NotFound:
        raise kind.resource.not_found(name) from None
    except Conflict:
        raise kind.resource.conflict(name) from None
    return ObjectResult(row.body, 200, warnings)


OPTIONS_KINDS = {CREATE: "CreateOptions", UPDATE: "UpdateOptions", DELETE: "DeleteOptions"}
"""The options admission sees with each operation (a patch's are UpdateOptions, as kube's)."""


def admitted(
    request: ApiRequest,
    deps: Deps,
    operation: str,
    obj: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    *,
    name: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[str, ...]:
    """The validating admission chain's warnings for this write, or its refusal."""
    return deps.admission.validate(_attributes(request, operation, obj, old, name, options))


def mutated(
    request: ApiRequest,
    deps: Deps,
    operation: str,
    obj: dict[str, Any],
    old: Mapping[str, Any] | None,
    *,
    name: str | None = None,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The object as the mutating admission chain leaves it, checked again against the
    kind's schema when it changed (a webhook's patch is pruned, defaulted and validated as a
    body is), with the warnings to send."""
    attributes, warnings = deps.admission.mutate(
        _attributes(request, operation, obj, old, name, None)
    )
    if attributes.object is obj:
        return obj, warnings
    checked_obj, more = checked(request, attributes.object)
    return checked_obj, warnings + more


def _attributes(
    request: ApiRequest,
    operation: str,
    obj: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    name: str | None,
    options: Mapping[str, Any] | None,
) -> Attributes:
    """The write as admission sees it: ``name`` is the request's (default: the URL's);
    ``options`` the DeleteOptions of a delete (else the write's own)."""
    kind = request.kind
    if options is None:
        written = request.options
        options = {
            key: value
            for key, value in (
                ("dryRun", ["All"] if written.dry_run else None),
                ("fieldManager", written.field_manager),
                ("fieldValidation", written.field_validation),
            )
            if value
        }
    return Attributes(
        operation,
        kind.group,
        kind.version,
        kind.kind,
        kind.plural,
        request.subresource or "",
        request.namespace or "",
        request.name or "" if name is None else name,
        obj,
        old,
        request.user,
        dry_run=request.options.dry_run or "All" in options.get("dryRun", ()),
        options={"kind": OPTIONS_KINDS[operation], "apiVersion": "meta.k8s.io/v1", **options},
        annotate=request.annotate,
        authorize=request.authorize,
        deadline=request.deadline,
    )


ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
"""The garbage collector's finalizers: dependents are orphaned, or deleted first."""


def collector_finalizers(finalizers: list[str], options: Mapping[str, Any]) -> list[str]:
    """The finalizers a delete leaves, as kube's registry decides them for the garbage
    collector (deletionFinalizersForGarbageCollection): ``orphanDependents`` or the
    ``propagationPolicy`` asked for, else what the object already says, else background
    (no finalizer, the default of custom resources)."""
    orphan = options.get("orphanDependents")
    policy = options.get("propagationPolicy")
    if orphan is not None:
        orphans, foreground = bool(orphan), False
    elif policy in ("Orphan", "Background", "Foreground"):
        orphans, foreground = policy == "Orphan", policy == "Foreground"
    else:
        already = [f for f in finalizers if f in (ORPHAN, FOREGROUND)]
        orphans = bool(already) and already[0] == ORPHAN
        foreground = bool(already) and already[0] == FOREGROUND
    kept = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
    kept += [ORPHAN] * orphans + [FOREGROUND] * foreground
    return finalizers if set(kept) == set(finalizers) else kept


def delete_one(
    request: ApiRequest, namespace: str, name: str, options: Mapping[str, Any], deps: Deps
) -> tuple[bytes, bool]:
    """Delete, or mark for deletion when finalizers remain (the garbage collector's among
    them, as the options ask), once admitted; retried on concurrent writes. The object's
    last state, and whether it is gone."""
    kind = request.kind
    preconditions = options.get("preconditions") or {}
    dry = "All" in options.get("dryRun", ())
    for _ in range(5):
        found = deps.store.get(kind.plural, namespace, name)
        if found is None:
            raise kind.resource.not_found(name)
        obj = orjson.loads(found.body)
        meta = obj["metadata"]
        for field, actual in (("uid", meta["uid"]), ("resourceVersion", str(found.revision))):
            wanted = preconditions.get(field)
            if wanted is not None and wanted != actual:
                label = "UID" if field == "uid" else "ResourceVersion"
                raise kind.resource.conflict(
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, "
                    f"{label} in object meta: {actual}",
                )
        attributes = _attributes(request, DELETE, None, obj, name, options)
        deps.admission.mutate(attributes)  # webhooks may watch deletes; nothing to patch
        deps.admission.validate(attributes)
        finalizers = meta.get("finalizers") or []
        kept = collector_finalizers(finalizers, options)
        try:
            if kept:
                if meta.get("deletionTimestamp") and kept is finalizers:
                    return found.body, False  # already being deleted, as asked
                meta["finalizers"] = kept
                if not meta.get("deletionTimestamp"):
                    meta.update(
                        deletionTimestamp=objectmeta.now(),
                        deletionGracePeriodSeconds=0,
                        generation=meta.get("generation", 1) + 1,
                    )
                if dry:
                    return orjson.dumps(obj), False
                fields = kind.field_values(obj)
                document = kind.search_document(obj)
                row = deps.store.update(
                    kind.plural, namespace, name, found.revision, obj, fields, document
                )
                return row.body, False
            if dry:
                return found.body, True
            return deps.store.delete(kind.plural, namespace, name, found.revision).body, True
        except NotFound:
            raise kind.resource.not_found(name) from None
        except Conflict:
            continue  # changed between read and write: look again
    raise kind.resource.conflict(name)


def delete_options(request: ApiRequest) -> dict[str, Any]:
    """The DeleteOptions of a delete, from its body and its parameters: 400 for what Go would
    not decode, 422 for what kube's ValidateDeleteOptions refuses."""
    body = request.body if request.body is not None else {}
    if not isinstance(body, dict):
        raise bad_request("the request body must be a DeleteOptions object")
    if problem := gotypes.struct_problem("DeleteOptions", "", body):
        raise bad_request(problem)
    options = {key: value for key, value in body.items() if value is not None}
    query = request.query
    if "dryRun" in query:
        options.setdefault("dryRun", [query["dryRun"]])
    if "propagationPolicy" in query:
        options.setdefault("propagationPolicy", query["propagationPolicy"])
    if "orphanDependents" in query:
        options.setdefault("orphanDependents", params.flag(query, "orphanDependents"))
    if "gracePeriodSeconds" in query:
        options.setdefault("gracePeriodSeconds", params.int64(query["gracePeriodSeconds"]))
    problems = []
    policy = options.get("propagationPolicy")
    if policy is not None and "orphanDependents" in options:
        problems.append(
            f'propagationPolicy: Invalid value: "{policy}": orphanDependents and '
            "deletionPropagation cannot be both set"
        )
    if policy is not None and policy not in ("Foreground", "Background", "Orphan"):
        problems.append(
            f'propagationPolicy: Unsupported value: "{policy}": supported values: '
            '"Foreground", "Background", "Orphan", "nil"'
        )
    dry = options.get("dryRun") or []
    if any(v != "All" for v in dry):
        shown = ", ".join(f'"{v}"' for v in dry)
        problems.append(f'dryRun: Unsupported value: []string{{{shown}}}: supported values: "All"')
    if problems:
        raise params.invalid_options("DeleteOptions", problems)
    return options
