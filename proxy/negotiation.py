"""Content negotiation: which representation to answer, and how to read request bodies.

Accept alternatives are walked in order and the first one we can produce wins, as
kube-apiserver does; protobuf is skipped. Bodies are JSON or YAML, with or without a
Content-Type (``kubectl create --raw -f x.yaml`` sends YAML with none).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from handlers.api.errors import bad_request, not_acceptable, unsupported_media_type
from handlers.api.patching import APPLY_PATCH, PATCH_TYPES

JSON = "application/json"
YAML = "application/yaml"
META_GROUP = "meta.k8s.io"
BODY_TYPES = (JSON, YAML)
JSON_PATCH_TYPES = tuple(t for t in PATCH_TYPES if t != APPLY_PATCH)


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One alternative of an Accept header."""

    type: str
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class Output:
    """The chosen representation: ``object``, ``table`` or ``metadata`` (PartialObjectMetadata)."""

    form: str
    media_type: str = JSON
    version: str = "v1"


def parse_accept(header: str | None) -> list[MediaRange]:
    """The alternatives of an Accept header, in the client's order."""
    ranges = []
    for item in (header or "").split(","):
        pieces = [p.strip() for p in item.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        ranges.append(MediaRange(pieces[0].lower(), params))
    return ranges


@functools.lru_cache(maxsize=256)
def negotiate(header: str | None, *, listing: bool) -> Output:
    """Choose the representation of a resource response; 406 when none is acceptable.

    Clients send few distinct Accept headers, so answers are cached."""
    ranges = parse_accept(header)
    if not ranges:
        return Output("object")
    for r in ranges:
        if r.type in ("*/*", "application/*"):
            return Output("object")
        if r.type not in BODY_TYPES:
            continue
        wanted = r.params.get("as")
        if wanted is None:
            return Output("object", r.type)
        if r.params.get("g") != META_GROUP or r.type != JSON:
            continue
        version = r.params.get("v", "")
        if wanted == "Table" and version in ("v1", "v1beta1"):
            return Output("table", JSON, version)
        expected = "PartialObjectMetadataList" if listing else "PartialObjectMetadata"
        if wanted == expected and version in ("v1", "v1beta1"):
            return Output("metadata", JSON, version)
    raise not_acceptable([JSON, YAML])


class _Loader(yaml.SafeLoader):
    """YAML as Kubernetes reads it: timestamps stay strings."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header."""
    return (content_type or "").split(";")[0].strip().lower()


def decode_body(content_type: str | None, raw: bytes, *, patch: bool = False) -> Any:
    """Decode a request body; 415 for unknown types, 400 for malformed documents.

    A PATCH body must be one of the patch types we implement (a strategic merge patch is
    refused as kube refuses it for CRDs); other bodies are JSON or YAML."""
    base = media_type(content_type)
    accepted = PATCH_TYPES if patch else BODY_TYPES
    if base not in accepted and (patch or base != ""):
        raise unsupported_media_type(accepted)
    if not raw.strip():
        return None
    as_json = base in (JSON, *JSON_PATCH_TYPES) or (base == "" and raw.lstrip()[:1] in (b"{", b"["))
    try:
        if as_json:
            return orjson.loads(raw)
        return yaml.load(raw, Loader=_Loader)  # a SafeLoader subclass
    except orjson.JSONDecodeError as ex:
        raise bad_request(f"the request body is not valid JSON: {ex}") from None
    except yaml.YAMLError as ex:
        raise bad_request(f"the request body is not valid YAML: {ex}") from None
