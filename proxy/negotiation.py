"""Content negotiation: which representation to answer.

Accept alternatives are walked in order and the first one we can produce wins, as
kube-apiserver does; protobuf is skipped. Request bodies are read by :mod:`proxy.decoding`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from handlers.api.errors import not_acceptable

JSON = "application/json"
YAML = "application/yaml"
TEXT = "text/plain"
TEXT_RANGES = frozenset({TEXT, "text/*", "*/*"})
META_GROUP = "meta.k8s.io"
BODY_TYPES = (JSON, YAML)


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One alternative of an Accept header."""

    type: str
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class Output:
    """The chosen representation: ``object``, ``table``, ``metadata`` (PartialObjectMetadata)
    or ``text`` (a resource's plain-text answer)."""

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
def negotiate(header: str | None, *, listing: bool, plain: bool = False) -> Output:
    """Choose the representation of a resource response; 406 when none is acceptable.

    A resource with a ``plain`` text answer (the tutorial's search) gives it to every client
    that accepts it at all: kubectl's ``get --raw`` asks ``application/json, */*`` and the
    tutorial's command line reads text; a client that wants JSON asks for JSON only.
    Clients send few distinct Accept headers, so answers are cached."""
    ranges = parse_accept(header)
    if plain and (not ranges or any(r.type in TEXT_RANGES for r in ranges)):
        return Output("text", f"{TEXT}; charset=utf-8")
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
    raise not_acceptable([JSON, YAML, *([TEXT] if plain else [])])
