"""Rendering handler results: objects, lists, Tables and PartialObjectMetadata.

Plain JSON objects and lists are assembled from the stored bytes without parsing them;
only Tables and metadata views parse each object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import yaml

from handlers.api.contract import ListResult, ObjectResult, Result
from handlers.api.errors import bad_request
from handlers.api.kind import Kind
from handlers.api.watch import INITIAL_EVENTS_END, WatchEvent
from proxy.negotiation import YAML, Output

INCLUDE_OBJECT = ("", "Metadata", "Object", "None")


def render(kind: Kind, result: Result, output: Output, include_object: str) -> bytes:
    """The response body for ``result`` in the negotiated representation."""
    if include_object not in INCLUDE_OBJECT:
        raise bad_request(
            f'invalid includeObject value "{include_object}": must be one of None, Metadata, Object'
        )
    if isinstance(result, ObjectResult):
        body = _object(kind, result, output, include_object)
    elif isinstance(result, ListResult):
        body = _list(kind, result, output, include_object)
    else:
        raise TypeError("a watch is streamed, not rendered whole")
    if output.media_type == YAML:
        return yaml.safe_dump(orjson.loads(body), sort_keys=False).encode()
    return body


def _object(kind: Kind, result: ObjectResult, output: Output, include_object: str) -> bytes:
    if output.form == "object":
        return result.body
    obj = orjson.loads(result.body)
    if output.form == "metadata":
        return orjson.dumps(partial_metadata(obj, output.version))
    version = obj.get("metadata", {}).get("resourceVersion", "")
    return orjson.dumps(
        table(kind, [obj], output.version, {"resourceVersion": version}, include_object)
    )


def _list(kind: Kind, result: ListResult, output: Output, include_object: str) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(result.revision)}
    if result.continue_token:
        meta["continue"] = result.continue_token
    if result.remaining is not None:
        meta["remainingItemCount"] = result.remaining
    if output.form == "text" and kind.plain is not None:
        return ",".join(kind.plain(orjson.loads(item)) for item in result.items).encode()
    if output.form == "object":
        head = orjson.dumps(
            {"kind": kind.list_kind, "apiVersion": kind.api_version, "metadata": meta}
        )
        return head[:-1] + b',"items":[' + b",".join(result.items) + b"]}"
    objects = [orjson.loads(item) for item in result.items]
    if output.form == "metadata":
        return orjson.dumps(
            {
                "kind": "PartialObjectMetadataList",
                "apiVersion": f"meta.k8s.io/{output.version}",
                "metadata": meta,
                "items": [partial_metadata(o, output.version) for o in objects],
            }
        )
    return orjson.dumps(table(kind, objects, output.version, meta, include_object))


def watch_event(
    kind: Kind, event: WatchEvent, first: bool, *, output: Output, include: str
) -> bytes:
    """One line of a watch stream; in a Table watch only the first carries the columns.

    A BOOKMARK takes the watch's form too, as kube's watch encoder transforms every object but
    a Status: a metadata client decodes PartialObjectMetadata only. The initial-events-end
    BOOKMARK's row in a Table shows its metadata unless the whole object was asked for."""
    if output.form == "object" or event.type == "ERROR":
        return b'{"type":"%s","object":%s}\n' % (event.type.encode(), event.body)
    obj = orjson.loads(event.body)
    if output.form == "metadata":
        rendered = partial_metadata(obj, output.version)
    else:
        if include == "None" and INITIAL_EVENTS_END in obj["metadata"].get("annotations", ()):
            include = "Metadata"
        version = obj.get("metadata", {}).get("resourceVersion", "")
        rendered = table(
            kind,
            [obj],
            output.version,
            {"resourceVersion": version},
            include,
            with_columns=first,
        )
    return orjson.dumps({"type": event.type, "object": rendered}) + b"\n"


def partial_metadata(obj: Mapping[str, Any], version: str = "v1") -> dict[str, Any]:
    """The PartialObjectMetadata view of an object."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": obj.get("metadata", {}),
    }


def table(
    kind: Kind,
    objects: Iterable[Mapping[str, Any]],
    version: str,
    meta: Mapping[str, Any],
    include_object: str,
    *,
    with_columns: bool = True,
) -> dict[str, Any]:
    """A ``meta.k8s.io`` Table of ``objects`` with the kind's columns, cells pre-rendered."""
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [column.cell(obj) for column in kind.columns]}
        if include_object in ("", "Metadata"):
            row["object"] = partial_metadata(obj, version)
        elif include_object == "Object":
            row["object"] = obj
        rows.append(row)
    out: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": meta,
    }
    if with_columns:
        out["columnDefinitions"] = [column.definition() for column in kind.columns]
    out["rows"] = rows
    return out
