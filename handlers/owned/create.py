"""POST: a new object, to the collection or to an item path with the name taken from the URL."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from handlers.api import metavalidation, objectmeta
from handlers.api.admission import CREATE
from handlers.api.contract import ApiRequest, Deps, ObjectResult
from handlers.api.errors import Cause, bad_request
from handlers.owned.managedfields import Operation
from handlers.owned.validation import checked
from handlers.owned.writing import SERVER_OWNED, admitted, mutated
from store import AlreadyExists


def handle(request: ApiRequest, deps: Deps) -> ObjectResult:
    """Store the new object (201), named by ``name`` or made from ``generateName``; its
    manager owns every field it sets."""
    obj, warnings = checked(request, request.body)
    Operation.of(request, deps).updated(None, obj)
    return created(request, deps, obj, warnings)


def created(
    request: ApiRequest, deps: Deps, obj: dict[str, Any], warnings: tuple[str, ...]
) -> ObjectResult:
    """Store ``obj``, checked and with its managers, as a new object (201)."""
    kind = request.kind
    strategy = kind.strategy(request.subresource)
    obj, mutations = mutated(request, deps, CREATE, obj, None, name=obj["metadata"].get("name"))
    warnings += mutations
    meta = obj["metadata"]
    if "resourceVersion" in meta:
        raise bad_request("resourceVersion should not be set on objects to be created")
    given = meta.get("name") or ""
    if not given:
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
    for key in SERVER_OWNED:
        meta.pop(key, None)
    meta.update(uid=str(uuid.uuid4()), creationTimestamp=objectmeta.now(), generation=1)
    strategy.prepare_for_create(obj)
    namespace, name = request.namespace or "", meta["name"]
    if causes := strategy.validate(obj) + metavalidation.managed_fields(meta):
        raise kind.resource.invalid(name, causes)
    strategy.canonicalize(obj)
    warnings += admitted(request, deps, CREATE, obj, None, name=given)
    if request.options.dry_run:
        if deps.store.get(kind.plural, namespace, name) is not None:
            raise kind.resource.already_exists(name)
        return ObjectResult(orjson.dumps(obj), 201, warnings)
    try:
        row = deps.store.create(
            kind.plural, namespace, name, obj, kind.field_values(obj), kind.search_document(obj)
        )
    except AlreadyExists:
        raise kind.resource.already_exists(name) from None
    return ObjectResult(row.body, 201, warnings)
