"""OpenAPI v3 and v2 documents, derived from the registry of kinds and built once.

The v3 group-version document is the source; v2 is converted from it. Schemas are
self-contained (object metadata included) and carry the GVK extensions kubectl reads; the
PATCH operation lists only the patch types we implement, so kubectl never sends a
strategic merge patch.

Operations are named and answered as kube-apiserver's documents for custom resources name
and answer them (apiextensions-apiserver's OpenAPI builder, with k8s.io/apiserver's
``GetOperationIDAndTags``): one unique operationId per operation, the all-namespaces list
named ``list...ForAllNamespaces``, and the success codes of each verb (:data:`SUCCESS`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from typing import Any

import orjson

from handlers.api import GROUP, GROUP_VERSION, VERSION
from handlers.api.kind import Kind
from handlers.api.objectmeta import (
    DEFINITIONS,
    DEFS_PREFIX,
    LIST_META_DESCRIPTION,
    described_ref,
    ref,
)
from handlers.api.patching import PATCH_TYPES
from handlers.registry import Served
from proxy.negotiation import JSON, YAML

V3_KEY = f"apis/{GROUP_VERSION}"
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
SUCCESS = {
    "get": ("200",),
    "list": ("200",),
    "post": ("200", "201", "202"),
    "put": ("200", "201"),
    "patch": ("200", "201"),
    "delete": ("200", "202"),
    "deletecollection": ("200",),
}
"""The success codes kube declares for each action (``x-kubernetes-action``). Patch declares
201 as kube's built-in resources do, since an apply may create the object."""
_DESCRIPTIONS = {"200": "OK", "201": "Created", "202": "Accepted"}


def _valid_operation_id(text: str, capitalize: bool) -> str:
    """kube-openapi's ``ToValidOperationID``: drop punctuation, capitalize after it."""
    out = []
    for i, char in enumerate(text):
        if char.isalpha() or char == "_" or (i and char.isdigit()):
            out.append(char.upper() if capitalize else char)
            capitalize = False
        else:
            capitalize = True
    return "".join(out)


TAG = f"{_valid_operation_id(GROUP, False)}_{_valid_operation_id(VERSION, False)}"
"""kube's tag for a group-version: ``searchTaskExampleExampleCom_v1``."""
_ID_INFIX = _valid_operation_id(GROUP, True) + _valid_operation_id(VERSION, True)


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": kind}}


DRY_RUN = _query("dryRun", "When present (All), the request is validated but not persisted.")
FIELD_MANAGER = _query("fieldManager", "Name of the actor making the change.")
FIELD_VALIDATION = _query(
    "fieldValidation",
    "How to treat unknown or duplicate fields: Ignore, Warn (the default) or Strict.",
)
SELECTION_PARAMS = [
    _query("labelSelector", "Select objects by their labels."),
    _query("fieldSelector", "Select objects by fields (metadata.name, spec.priority, ...)."),
    _query("limit", "Maximum number of items to return; use continue for the rest.", "integer"),
    _query("continue", "Token from a previous page to fetch the next one."),
    _query("resourceVersion", "Revision constraint for the read."),
    _query("resourceVersionMatch", "How resourceVersion applies: Exact or NotOlderThan."),
    _query("timeoutSeconds", "Duration limit of a list or watch call.", "integer"),
]
"""kube's ListOptions as a delete of a collection takes them (no watch)."""
LIST_PARAMS = [
    *SELECTION_PARAMS,
    _query("watch", "Stream changes instead of listing.", "boolean"),
    _query("allowWatchBookmarks", "Ask for BOOKMARK events in a watch.", "boolean"),
]
DELETE_PARAMS = [
    _query(
        "gracePeriodSeconds", "Seconds before the object is deleted; zero means now.", "integer"
    ),
    _query("propagationPolicy", "How dependents are collected: Orphan, Background, Foreground."),
    DRY_RUN,
]
DELETE_OPTIONS = "DeleteOptions"
"""Our name for kube's ``metav1.DeleteOptions``, the optional body of a delete."""
_PATH_PARAM = {"in": "path", "required": True, "schema": {"type": "string", "uniqueItems": True}}


def _gvk(kind: str) -> dict[str, str]:
    return {"group": GROUP, "version": VERSION, "kind": kind}


def _content(schema: dict[str, Any], types: Sequence[str] = (JSON, YAML)) -> dict[str, Any]:
    return {t: {"schema": schema} for t in types}


def operation_id(
    verb: str, kind: Kind, subresource: str = "", *, every_namespace: bool = False
) -> str:
    """kube's operationId: the verb, the group-version, the scope, the kind, the subresource
    (``deletecollection`` reads ``delete<GV>Collection...``, as kube's verb trie splits it)."""
    head, rest = ("delete", "Collection") if verb == "deletecollection" else (verb, "")
    if every_namespace:
        return f"{head}{_ID_INFIX}{kind.kind}ForAllNamespaces"
    scope = "Namespaced" if kind.namespaced else ""
    return f"{head}{_ID_INFIX}{rest}{scope}{kind.kind}{subresource.title()}"


def _article(kind: Kind) -> str:
    """kube's ``GetArticleForNoun``, for the descriptions of create and delete."""
    return "an" if kind.kind[:1] in "AEIOU" else "a"


def _operation(
    kind: Kind,
    action: str,
    operation: str,
    result: dict[str, Any],
    description: str,
    **extra: Any,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": [TAG],
        "description": description,
        "operationId": operation,
        "responses": {
            code: {"description": _DESCRIPTIONS[code], "content": _content(result)}
            for code in SUCCESS[action]
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(kind.kind),
    }
    op.update(extra)
    return op


WRITE_PARAMS = [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION]
_DELETE_BODY = {"required": False, "content": _content(ref(DELETE_OPTIONS))}


def _item_operations(kind: Kind, verbs: Collection[str], sub: str = "") -> dict[str, Any]:
    """The operations on one object (or on its subresource ``sub``).

    A delete answers the object (custom resources' stores return the deleted object), not the
    Status kube's documents declare for it, so that is what the document says."""
    obj = ref(kind.kind)
    write = {"requestBody": {"required": True, "content": _content(obj)}}
    patch_body = {"required": True, "content": _content({"type": "object"}, PATCH_TYPES)}
    force = _query("force", "Apply even over conflicts (server-side apply only).", "boolean")
    of = f" {sub} of" if sub else ""
    ops: dict[str, Any] = {}
    if "get" in verbs:
        ops["get"] = _operation(
            kind, "get", operation_id("read", kind, sub), obj, f"read{of} the specified {kind.kind}"
        )
    if "update" in verbs:
        ops["put"] = _operation(
            kind,
            "put",
            operation_id("replace", kind, sub),
            obj,
            f"replace{of} the specified {kind.kind}",
            parameters=WRITE_PARAMS,
            **write,
        )
    if "patch" in verbs:
        ops["patch"] = _operation(
            kind,
            "patch",
            operation_id("patch", kind, sub),
            obj,
            f"partially update{of} the specified {kind.kind}",
            parameters=[*WRITE_PARAMS, force],
            requestBody=patch_body,
        )
    if "delete" in verbs:
        ops["delete"] = _operation(
            kind,
            "delete",
            operation_id("delete", kind, sub),
            obj,
            f"delete{of} {_article(kind)} {kind.kind}",
            parameters=DELETE_PARAMS,
            requestBody=_DELETE_BODY,
        )
    return ops


def _paths(served: Served) -> dict[str, Any]:
    kind = served.kind
    base = f"/apis/{GROUP_VERSION}"
    prefix = f"{base}/namespaces/{{namespace}}" if kind.namespaced else base
    collection_path, item_path = f"{prefix}/{kind.plural}", f"{prefix}/{kind.plural}/{{name}}"
    obj, objects = ref(kind.kind), ref(kind.list_kind)
    verbs = set(served.verbs)
    listed = f"list or watch objects of kind {kind.kind}"
    collection: dict[str, Any] = {}
    if "list" in verbs:
        collection["get"] = _operation(
            kind, "list", operation_id("list", kind), objects, listed, parameters=LIST_PARAMS
        )
    if "create" in verbs:
        collection["post"] = _operation(
            kind,
            "post",
            operation_id("create", kind),
            obj,
            f"create {_article(kind)} {kind.kind}",
            parameters=WRITE_PARAMS,
            requestBody={"required": True, "content": _content(obj)},
        )
    if "deletecollection" in verbs:
        # The list of what was deleted, as custom resources answer (kube declares a Status).
        collection["delete"] = _operation(
            kind,
            "deletecollection",
            operation_id("deletecollection", kind),
            objects,
            f"delete collection of {kind.kind}",
            parameters=[*SELECTION_PARAMS, *DELETE_PARAMS],
            requestBody=_DELETE_BODY,
        )
    scope_params = [{"name": "namespace", **_PATH_PARAM}] if kind.namespaced else []
    item_params = [{"name": "name", **_PATH_PARAM}, *scope_params]
    paths: dict[str, Any] = {}
    if collection:
        paths[collection_path] = {**collection, "parameters": scope_params}
    if item := _item_operations(kind, verbs):
        paths[item_path] = {**item, "parameters": item_params}
    if kind.namespaced and "list" in verbs:
        every = operation_id("list", kind, every_namespace=True)
        paths[f"{base}/{kind.plural}"] = {
            "get": _operation(kind, "list", every, objects, listed, parameters=LIST_PARAMS)
        }
    for sub, sub_verbs in served.subresources.items():
        ops = _item_operations(kind, sub_verbs, sub)
        paths[f"{item_path}/{sub}"] = {**ops, "parameters": item_params}
    return paths


_DELETE_OPTIONS_SCHEMA = {
    "type": "object",
    "description": "Options of a delete: dry run, preconditions and how dependents go.",
    "properties": {
        "apiVersion": {"type": "string", "description": "Versioned schema."},
        "kind": {"type": "string", "description": "Kind: DeleteOptions."},
        "dryRun": {
            "type": "array",
            "items": {"type": "string", "default": ""},
            "description": "When present (All), the request is validated but not persisted.",
        },
        "gracePeriodSeconds": {
            "type": "integer",
            "format": "int64",
            "description": "Seconds before the object is deleted; zero means now.",
        },
        "orphanDependents": {
            "type": "boolean",
            "description": "Deprecated: use propagationPolicy.",
        },
        "preconditions": {
            "type": "object",
            "description": "Must hold for the delete to go ahead, else 409 Conflict.",
            "properties": {
                "resourceVersion": {"type": "string", "description": "The target's revision."},
                "uid": {"type": "string", "description": "The target's UID."},
            },
        },
        "propagationPolicy": {
            "type": "string",
            "description": "How dependents are collected: Orphan, Background or Foreground.",
        },
    },
}


def _schemas(kinds: Sequence[Kind]) -> dict[str, Any]:
    schemas: dict[str, Any] = dict(DEFINITIONS)
    schemas[DEFS_PREFIX + DELETE_OPTIONS] = _DELETE_OPTIONS_SCHEMA
    for kind in kinds:
        schemas[DEFS_PREFIX + kind.kind] = {
            **kind.schema(),
            "x-kubernetes-group-version-kind": [_gvk(kind.kind)],
        }
        schemas[DEFS_PREFIX + kind.list_kind] = {
            "type": "object",
            "description": f"{kind.list_kind} is a list of {kind.kind}.",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string", "description": "Versioned schema."},
                "kind": {"type": "string", "description": f"Kind: {kind.list_kind}."},
                "metadata": described_ref("ListMeta", LIST_META_DESCRIPTION),
                "items": {"type": "array", "items": ref(kind.kind)},
            },
            "x-kubernetes-group-version-kind": [_gvk(kind.list_kind)],
        }
    return dict(sorted(schemas.items()))


def v3_document(kinds: Sequence[Served]) -> dict[str, Any]:
    """The OpenAPI 3.0 document of our group-version (O4)."""
    paths: dict[str, Any] = {}
    described = [served for served in kinds if served.kind.has_objects]  # no schema: no kind
    for served in described:
        paths.update(_paths(served))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Task search API", "version": VERSION},
        "paths": paths,
        "components": {"schemas": _schemas([served.kind for served in described])},
    }


def v2_document(v3: dict[str, Any]) -> dict[str, Any]:
    """The Swagger 2.0 form of the v3 document (O1)."""
    paths: dict[str, Any] = {}
    for path, item in v3["paths"].items():
        converted: dict[str, Any] = {}
        for method, op in item.items():
            if method == "parameters":
                converted[method] = [_v2_param(p) for p in op]
                continue
            new = {k: v for k, v in op.items() if k not in ("requestBody", "responses")}
            new["parameters"] = [_v2_param(p) for p in op.get("parameters", [])]
            if "requestBody" in op:
                content = op["requestBody"]["content"]
                new["consumes"] = list(content)
                new["parameters"].insert(
                    0,
                    {
                        "name": "body",
                        "in": "body",
                        "required": op["requestBody"].get("required", False),
                        "schema": next(iter(content.values()))["schema"],
                    },
                )
            new["produces"] = [JSON, YAML]
            new["schemes"] = ["https"]
            new["responses"] = {
                code: {"description": r["description"], "schema": r["content"][JSON]["schema"]}
                for code, r in op["responses"].items()
            }
            converted[method] = new
        paths[path] = converted
    return {
        "swagger": "2.0",
        "info": v3["info"],
        "paths": paths,
        "definitions": v3["components"]["schemas"],
    }


def _v2_param(param: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in param.items() if k != "schema"}
    out.update(param.get("schema", {}))
    return out


class OpenAPI:
    """The prebuilt documents: v2 JSON, the v3 index and the v3 group-version document."""

    def __init__(self, kinds: Sequence[Served]) -> None:
        v3 = v3_document(kinds)
        self.v3 = orjson.dumps(v3)
        self.v3_hash = hashlib.sha512(self.v3).hexdigest().upper()
        self.v2 = orjson.dumps(v2_document(v3)).replace(b"#/components/schemas/", b"#/definitions/")
        self.v2_etag = '"' + hashlib.sha512(self.v2).hexdigest().upper() + '"'
        self.v3_index = orjson.dumps(
            {"paths": {V3_KEY: {"serverRelativeURL": f"/openapi/v3/{V3_KEY}?hash={self.v3_hash}"}}}
        )
