"""Discovery documents, derived once from the registry of kinds and served from memory.

The aggregator gives ``/apis/<group>/<version>`` five seconds; answering from prebuilt bytes
keeps it far inside that. Aggregated discovery (v2 and v2beta1) carries an ETag so the
aggregator's minutely refresh costs a 304.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from handlers.api import GROUP, GROUP_VERSION, VERSION
from handlers.api.errors import not_acceptable
from handlers.api.kind import Kind
from handlers.registry import Served
from proxy.negotiation import JSON, parse_accept

DISCOVERY_GROUP = "apidiscovery.k8s.io"
AGGREGATED_VERSIONS = ("v2", "v2beta1")
KUBERNETES_VERSION = {"major": "1", "minor": "33"}


@dataclass(frozen=True, slots=True)
class Document:
    """A prebuilt response body with its media type and ETag."""

    body: bytes
    content_type: str = JSON

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest() + '"'


def resource_list(kinds: Sequence[Served]) -> Document:
    """``GET /apis/<group>/<version>``: the APIResourceList (D1)."""
    resources = []
    for served in kinds:
        kind = served.kind
        entry: dict[str, Any] = {
            "name": kind.plural,
            "singularName": kind.singular,
            "namespaced": kind.namespaced,
            "kind": kind.kind,
            "verbs": served.verbs,
            **_aliases(kind),
        }
        resources.append(entry)
        resources.extend(
            {
                "name": f"{kind.plural}/{sub}",
                "singularName": "",
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": sorted(verbs),
            }
            for sub, verbs in served.subresources.items()
        )
    return Document(
        orjson.dumps(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": GROUP_VERSION,
                "resources": resources,
            }
        )
    )


def _aliases(kind: Kind) -> dict[str, list[str]]:
    """Short names and categories, present only when declared."""
    aliases = {"shortNames": list(kind.short_names), "categories": list(kind.categories)}
    return {key: values for key, values in aliases.items() if values}


def _group_version() -> dict[str, str]:
    return {"groupVersion": GROUP_VERSION, "version": VERSION}


def api_group() -> dict[str, Any]:
    """The APIGroup of our one group (D3)."""
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [_group_version()],
        "preferredVersion": _group_version(),
    }


def group_list() -> Document:
    """Legacy ``GET /apis``: the APIGroupList (D3)."""
    group = {k: v for k, v in api_group().items() if k not in ("kind", "apiVersion")}
    return Document(orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}))


def aggregated(kinds: Sequence[Served], version: str) -> Document:
    """``GET /apis`` as an APIGroupDiscoveryList (D2), in ``v2`` or ``v2beta1``."""
    resources = []
    for served in kinds:
        kind = served.kind
        entry: dict[str, Any] = {
            "resource": kind.plural,
            "singularResource": kind.singular,
            "scope": "Namespaced" if kind.namespaced else "Cluster",
            "responseKind": _response_kind(kind),
            "verbs": served.verbs,
            **_aliases(kind),
        }
        if served.subresources:
            entry["subresources"] = [
                {
                    "subresource": sub,
                    "responseKind": {"group": GROUP, "version": VERSION, "kind": kind.kind},
                    "verbs": sorted(verbs),
                }
                for sub, verbs in served.subresources.items()
            ]
        resources.append(entry)
    body = {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"{DISCOVERY_GROUP}/{version}",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": GROUP},
                "versions": [{"version": VERSION, "freshness": "Current", "resources": resources}],
            }
        ],
    }
    return Document(orjson.dumps(body), aggregated_media_type(version))


def _response_kind(kind: Kind) -> dict[str, str]:
    """What a resource answers with; for one without a kind, the empty one kube-apiserver
    converts an APIResource without a kind to (client-go 1.28+ then leave the resource out of
    their mapping; 1.27 would fail on no ``responseKind`` at all)."""
    if not kind.has_objects:
        return {"group": "", "version": "", "kind": ""}
    return {"group": GROUP, "version": VERSION, "kind": kind.kind}


def aggregated_media_type(version: str) -> str:
    return f"{JSON};g={DISCOVERY_GROUP};v={version};as=APIGroupDiscoveryList"


def version_info() -> Document:
    """``GET /version``."""
    return Document(
        orjson.dumps(
            {
                **KUBERNETES_VERSION,
                "gitVersion": "v1.33.0+taskapi",
                "gitCommit": "",
                "gitTreeState": "clean",
                "buildDate": "",
                "goVersion": "",
                "compiler": "cpython",
                "platform": "linux/amd64",
            }
        )
    )


class Discovery:
    """Every discovery document, built once."""

    def __init__(self, kinds: Sequence[Served]) -> None:
        self.resources = resource_list(kinds)
        self.groups = group_list()
        self.group = Document(orjson.dumps(api_group()))
        self.version = version_info()
        self._aggregated = {v: aggregated(kinds, v) for v in AGGREGATED_VERSIONS}

    def apis(self, accept: str | None) -> Document:
        """``/apis``: the first Accept alternative we serve wins (aggregated or legacy)."""
        ranges = parse_accept(accept)
        if not ranges:
            return self.groups
        for r in ranges:
            if r.type in ("*/*", "application/*"):
                return self.groups
            if r.type != JSON:
                continue
            if not r.params:
                return self.groups
            if (
                r.params.get("g") == DISCOVERY_GROUP
                and r.params.get("as") == "APIGroupDiscoveryList"
                and r.params.get("v") in self._aggregated
            ):
                return self._aggregated[r.params["v"]]
        raise not_acceptable([JSON, aggregated_media_type("v2"), aggregated_media_type("v2beta1")])
