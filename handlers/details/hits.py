"""A search hit as the API shows it: a reference to its object (apiVersion, kind, metadata)
with the tutorial's key, a score and the snippet of the details; and the Table columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from handlers.api import GROUP, GROUP_VERSION, columns
from handlers.registry import find
from k8s import paths, taskindex
from store.fulltext import Hit


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the objects of a stored resource live, and their kind."""

    group: str
    resource: str
    api_version: str
    kind: str


def origin(res: str) -> Origin:
    """The origin of the documents the store keeps under ``res``."""
    if res == taskindex.RESOURCE:
        return Origin(paths.TASK_GROUP, "tasks", taskindex.API_VERSION, taskindex.KIND)
    served = find(res)
    return Origin(GROUP, res, GROUP_VERSION, served.kind.kind if served else res)


def item(hit: Hit) -> bytes:
    """The hit as one item of a SearchHitList (a higher score is better)."""
    found = origin(hit.res)
    scope = {"namespace": hit.namespace} if hit.namespace else {}
    return orjson.dumps(
        {
            "apiVersion": found.api_version,
            "kind": found.kind,
            "metadata": {**scope, "name": hit.name, "generation": hit.generation},
            "key": taskindex.indexer_key(hit.namespace, hit.name, hit.generation),
            "score": -hit.rank if hit.rank else 0.0,
            "snippet": hit.snippet,
        }
    )


def key(item: Mapping[str, Any]) -> str:
    """An item's text in the plain answer: the tutorial's key."""
    return str(item["key"])


def _meta(item: Mapping[str, Any], field: str) -> Any:
    return item["metadata"].get(field, "")


COLUMNS = (
    columns.Column("Kind", "string", "Kind of the object found.", lambda i: i["kind"]),
    columns.Column(
        "Namespace", "string", "Namespace of the object found.", lambda i: _meta(i, "namespace")
    ),
    columns.Column(
        "Name", "string", "Name of the object found.", lambda i: _meta(i, "name"), format="name"
    ),
    columns.Column(
        "Generation", "integer", "The generation found.", lambda i: _meta(i, "generation")
    ),
    columns.Column("Score", "number", "Relevance: higher is better.", lambda i: i["score"]),
    columns.Column(
        "Details", "string", "Where the details match, [marked].", lambda i: i["snippet"]
    ),
)
