"""Sets of field paths, as server-side apply records who owns what (``FieldsV1``).

A path is a tuple of elements written as FieldsV1 writes them: ``f:<field>`` (a field or a
map key), ``k:<json>`` (an item of a list keyed by some of its fields), ``v:<json>`` (an item
of a set) and ``i:<index>``. A set of paths is a plain ``frozenset``: union, difference and
intersection are Python's own. Only the members are in the set; their ancestors are not,
unless they were owned themselves (a map added whole, a list item).

This module converts such sets to and from FieldsV1 JSON, and prints a path as kube's
conflict messages do. No Python library implements structured-merge-diff's field sets; the
walk over objects that makes them is :mod:`handlers.api.shapes`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

Path = tuple[str, ...]
FieldSet = frozenset[Path]
EMPTY: FieldSet = frozenset()

_KINDS = {"f": 0, "k": 1, "v": 2, "i": 3}  # kube's order of path elements of each kind
_SELF = "."


def element_order(element: str) -> tuple[int, Any]:
    """Sort key of a path element in kube's order: fields, then keys, values, indexes."""
    kind, text = element[0], element[2:]
    if kind == "f":
        return (0, text)
    if kind == "i":
        return (3, int(text))
    decoded = orjson.loads(text)
    if kind == "k":
        return (1, sorted((name, _value_order(v)) for name, v in decoded.items()))
    return (2, _value_order(decoded))


def _value_order(value: Any) -> tuple[int, Any]:
    """kube's total order of values: numbers, strings, booleans, then the rest."""
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (3, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """The FieldsV1 tree of a set: each member an empty object, or ``"."`` among the
    children of a member that has children; keys in kube's order. Shared between equal
    sets: not to be changed."""
    return _to_fields_v1(frozenset(paths))


@functools.lru_cache(maxsize=4096)
def _to_fields_v1(paths: FieldSet) -> dict[str, Any]:
    """Many objects have equal sets (one manager, one shape of object): each written once."""
    tree: dict[str, Any] = {}
    members: set[Path] = set()
    for path in paths:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        members.add(path)
    return _emitted(tree, (), members)


def _emitted(node: dict[str, Any], path: Path, members: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if node and path in members and path:
        out[_SELF] = {}
    for element in sorted(node, key=element_order):
        out[element] = _emitted(node[element], (*path, element), members)
    return out


def from_fields_v1(fields: Any) -> FieldSet:
    """The set a FieldsV1 tree holds; ValueError when it is not one."""
    if not isinstance(fields, Mapping):
        raise ValueError("expected an object at the root")
    return _read(orjson.dumps(fields))


@functools.lru_cache(maxsize=4096)
def _read(fields: bytes) -> FieldSet:
    """Many objects have equal sets: each read once."""
    paths: set[Path] = set()
    _collect(orjson.loads(fields), (), paths)
    return frozenset(paths)


def _collect(node: Any, path: Path, paths: set[Path]) -> None:
    if not isinstance(node, Mapping):
        raise ValueError(f"expected an object at {path_string(path) or 'the root'}")
    if not node and path:
        paths.add(path)
    for element, child in node.items():
        if element == _SELF:
            if path:
                paths.add(path)
            continue
        if len(element) < 2 or element[1] != ":" or element[0] not in _KINDS:
            raise ValueError(f"unknown path element {element!r}")
        if element[0] in "kv":
            try:
                orjson.loads(element[2:])
            except orjson.JSONDecodeError:
                raise ValueError(f"malformed path element {element!r}") from None
        elif element[0] == "i" and not element[2:].isdigit():
            raise ValueError(f"malformed path element {element!r}")
        _collect(child, (*path, element), paths)


def path_string(path: Path) -> str:
    """A path as kube prints it: ``.spec.priority``, ``.metadata.finalizers[="a"]``,
    ``.metadata.ownerReferences[uid="…"]``."""
    parts = []
    for element in path:
        kind, text = element[0], element[2:]
        if kind == "f":
            parts.append("." + text)
        elif kind == "i":
            parts.append(f"[{text}]")
        elif kind == "v":
            parts.append(f"[={_go_string(orjson.loads(text))}]")
        else:
            keys = orjson.loads(text)
            parts.append("[" + ",".join(f"{k}={_go_string(v)}" for k, v in keys.items()) + "]")
    return "".join(parts)


def _go_string(value: Any) -> str:
    """A value as kube's ``value.ToString`` prints it: strings quoted, the rest bare."""
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return orjson.dumps(value).decode()


def iterate(paths: FieldSet) -> list[Path]:
    """The paths in the order kube iterates a set: at each level the members first, then
    the children's subtrees, each in element order (conflicts are listed this way)."""
    return sorted(paths, key=_iteration_key)


def _iteration_key(path: Path) -> tuple[tuple[int, tuple[int, Any]], ...]:
    # a member sorts before any deeper path under the same parent
    last = len(path) - 1
    return tuple((0 if i == last else 1, element_order(e)) for i, e in enumerate(path))


def without_prefixes(paths: FieldSet, prefixes: Iterable[Path]) -> FieldSet:
    """``paths`` less those at or under any of ``prefixes`` (fields a request may not own,
    such as ``.status`` through the main resource)."""
    prefixes = tuple(prefixes)
    if not prefixes:
        return paths
    return frozenset(p for p in paths if not any(p[: len(x)] == x for x in prefixes))
