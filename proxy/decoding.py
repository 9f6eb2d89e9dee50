"""Request bodies, read and decoded in one place with every limit enforced before the memory
is spent: the declared length first (413 before a byte is read), then, while decoding, the
nesting depth, the number of values and, for YAML, alias expansion.

JSON goes through orjson, which refuses invalid UTF-8 and lone surrogates. YAML goes through
libyaml's parser (PyYAML's C binding) with a composer of our own that counts as it builds:
PyYAML has no limits of its own, and a 600-byte alias bomb expands to gigabytes once
serialized. A YAML body that is JSON (what kubectl sends as an apply patch) takes the JSON
path. The limits are in the README's "Limits" table.
"""

from __future__ import annotations

import re
from typing import Any

import falcon
import orjson
import yaml
from gunicorn.http.errors import ParseException
from yaml._yaml import CParser
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import Node
from yaml.resolver import Resolver

from handlers.api.errors import bad_request, request_entity_too_large, unsupported_media_type
from handlers.api.patching import APPLY_PATCH, PATCH_TYPES, READ_PATCH_TYPES
from proxy.negotiation import BODY_TYPES, JSON

JSON_PATCH_TYPES = tuple(t for t in READ_PATCH_TYPES if t != APPLY_PATCH)

MAX_DEPTH = 100
"""Nested objects and arrays. kube's decoders allow 10,000; orjson writes at most 254, and
no Kubernetes object nests beyond a few dozen."""
MAX_VALUES = 250_000
"""Values (objects, arrays, strings, numbers...) in one body, aliases expanded: what bounds
the memory a 3 MiB body may take (a million empty objects would take 90 MB)."""
MAX_YAML_NODES = 50_000
"""YAML is composed in Python at about 14 µs and 400 bytes a node, so it gets less."""

_TOO_DEEP = f"it nests objects and arrays more than {MAX_DEPTH} deep"
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def read(req: falcon.Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes; a larger declared length is refused before reading,
    as kube does, so a client that declares 20 MB and sends nothing holds no thread."""
    declared = req.content_length
    if declared is not None and declared > limit:
        raise request_entity_too_large(limit)
    try:
        data: bytes = req.stream.read(limit + 1)
    except (ParseException, OSError) as ex:  # a malformed chunk, a body cut short
        raise bad_request(f"the request body could not be read: {ex}") from None
    if len(data) > limit:
        raise request_entity_too_large(limit)
    return data


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header."""
    return (content_type or "").split(";")[0].strip().lower()


def decode(content_type: str | None, raw: bytes, *, patch: bool = False) -> Any:
    """A request body as JSON values; 415 for a type we do not read, 400 for a malformed or
    oversized document.

    A PATCH body must be one of the patch types we implement (a strategic merge patch is
    refused as kube refuses it for CRDs); other bodies are JSON or YAML, with or without a
    Content-Type (``kubectl create --raw -f x.yaml`` sends YAML with none)."""
    base = media_type(content_type)
    accepted = PATCH_TYPES if patch else BODY_TYPES
    if base not in (READ_PATCH_TYPES if patch else BODY_TYPES) and (patch or base != ""):
        raise unsupported_media_type(accepted)
    if not raw.strip():
        return None
    as_json = base in (JSON, *JSON_PATCH_TYPES)
    if not as_json and raw.lstrip()[:1] not in (b"{", b"["):
        return _yaml(raw)
    if _too_many_values(raw):
        raise _refused(f"it has more than {MAX_VALUES} values")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as ex:
        if not as_json:
            return _yaml(raw)  # flow-style YAML, not JSON
        raise bad_request(f"the request body is not valid JSON: {ex}") from None
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise _refused(_TOO_DEEP)
    return value


def _too_many_values(raw: bytes) -> bool:
    """Whether a JSON document holds more than MAX_VALUES values; a value takes a byte at
    least, so most bodies need no counting at all."""
    return (
        len(raw) > MAX_VALUES
        and _upper_bound_of_values(raw) > MAX_VALUES
        and _values_outside_strings(raw) > MAX_VALUES
    )


def _upper_bound_of_values(raw: bytes) -> int:
    """Every value but the first follows a ``,``, ``[`` or ``:``; counted in C."""
    return raw.count(b",") + raw.count(b"[") + raw.count(b":") + 1


def _values_outside_strings(raw: bytes) -> int:
    """The exact count, for the rare body the bound refuses (one string at a time, so that
    counting costs no memory)."""
    inside = sum(_upper_bound_of_values(m.group()) - 1 for m in _STRINGS.finditer(raw))
    return _upper_bound_of_values(raw) - inside


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` deep (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _yaml(raw: bytes) -> Any:
    try:
        loader = _Loader(raw)
        try:
            value = loader.get_single_data()
        finally:
            loader.dispose()
        # JSON values only, aliases expanded into a tree (bounded above), non-string keys
        # written as strings as Kubernetes' YAML-to-JSON conversion does
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except _Refused as ex:
        raise _refused(str(ex)) from None
    except yaml.YAMLError as ex:
        raise bad_request(f"the request body is not valid YAML: {ex}") from None
    except orjson.JSONEncodeError as ex:
        raise bad_request(f"the request body has a value JSON cannot carry: {ex}") from None


class _Refused(Exception):
    """A YAML document beyond the limits."""


def _refused(why: str) -> Exception:
    return bad_request(f"the request body is not accepted: {why}")


class _Loader(Composer, CParser, SafeConstructor, Resolver):
    """YAML as Kubernetes reads it: libyaml's parser, PyYAML's composer counting as it builds,
    the safe constructor, and timestamps left as strings.

    The composer counts the depth of open collections, the nodes the document would have with
    its aliases expanded, and each anchor's expanded weight. An alias costs what it expands
    to, so a bomb is refused at the alias that crosses the budget, with the message Go's YAML
    decoder gives, before anything is expanded."""

    def __init__(self, stream: bytes) -> None:
        CParser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self._nodes = 0
        self._open: list[list[int]] = []  # per open collection: [nodes, height] so far
        self._anchored: dict[int, tuple[int, int]] = {}  # id(node): (nodes, height)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            node = super().compose_node(parent, index)
            weight = self._anchored.get(id(node))
            if weight is None:
                raise _Refused("an anchor's value contains an alias of itself")
            self._count(weight, "document contains excessive aliasing")
            return node
        anchor = getattr(self.peek_event(), "anchor", None)
        collection = self.check_event(SequenceStartEvent, MappingStartEvent)
        if collection:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(_TOO_DEEP)
            self._open.append([0, 0])
        node = super().compose_node(parent, index)
        if collection:
            self._depth -= 1
            nodes, height = self._open.pop()
            weight = (nodes + 1, height + 1)
        else:
            weight = (1, 0)
        if anchor is not None:
            self._anchored[id(node)] = weight
        self._count(weight, f"it has more than {MAX_YAML_NODES} YAML nodes", new=not collection)
        return node

    def _count(self, weight: tuple[int, int], why: str, *, new: bool = True) -> None:
        """Add a finished node (or an alias's expansion) to its parent and to the total."""
        nodes, height = weight
        if self._open:
            parent = self._open[-1]
            parent[0] += nodes
            parent[1] = max(parent[1], height)
        if self._depth + height > MAX_DEPTH:
            raise _Refused(_TOO_DEEP)
        self._nodes += nodes if new else 1
        if self._nodes > MAX_YAML_NODES:
            raise _Refused(why)


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in Resolver.yaml_implicit_resolvers.items()
}
