"""The structure server-side apply sees in an object, and the walks over it: the fields an
object sets, what changed between two objects, an applied configuration merged into an
object, and fields removed from one.

A :class:`Shape` is read from the kind's OpenAPI schema, as structured-merge-diff reads a
CRD's: an object with ``properties`` is a structure of named fields; ``additionalProperties``
makes a map owned key by key; ``x-kubernetes-preserve-unknown-fields`` makes a free-form map
whose nested maps are owned key by key and whose lists are owned whole; an array is owned
whole unless ``x-kubernetes-list-type`` says ``set`` (items owned one by one) or ``map``
(items keyed by ``x-kubernetes-list-map-keys``). Fields the schema does not declare are not
owned: the schema check prunes them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from handlers.api.fieldsets import FieldSet, Path
from handlers.api.objectmeta import DEFINITIONS, REF_PREFIX

MISSING: Any = object()
"""An absent value, as opposed to ``None`` (a JSON null)."""


@dataclass(frozen=True, slots=True)
class Shape:
    """How one value is owned: ``scalar``, ``map``, ``list``, or ``free`` (decided by the
    value: maps granular, lists atomic)."""

    form: str
    fields: Mapping[str, Shape] = field(default_factory=dict)
    """The named fields of a map (a structure)."""
    element: Shape | None = None
    """The shape of a map's other keys (None: not owned), or of a list's items."""
    atomic: bool = False
    """Owned whole: compared and replaced as one value."""
    keys: tuple[str, ...] = ()
    """For a list of items keyed by fields (``x-kubernetes-list-type: map``)."""

    def resolved(self, value: Any) -> Shape:
        """The concrete shape of ``value`` (a free-form value's depends on it)."""
        if self.form != "free":
            return self
        if isinstance(value, dict):
            return FREE_MAP
        return ATOMIC if isinstance(value, list) else SCALAR

    def child(self, element: str) -> Shape | None:
        """The shape of the value at ``element`` under this one; None where nothing is owned."""
        if self.form == "list":
            return self.element
        if self.form == "map" and element.startswith("f:"):
            return self.fields.get(element[2:], self.element)
        return None

    @property
    def is_leaf(self) -> bool:
        return self.form == "scalar" or self.atomic


SCALAR = Shape("scalar")
ATOMIC = Shape("scalar", atomic=True)
FREE = Shape("free")
FREE_MAP = Shape("map", element=FREE)


def of_schema(schema: Mapping[str, Any]) -> Shape:
    """The shape an OpenAPI v3 schema describes."""
    if "$ref" in schema:
        schema = DEFINITIONS[schema["$ref"].removeprefix(REF_PREFIX)]
    if "allOf" in schema and "type" not in schema:
        return of_schema(schema["allOf"][0])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        element = None
        if isinstance(additional, dict):
            element = of_schema(additional)
        elif additional is True or schema.get("x-kubernetes-preserve-unknown-fields"):
            element = FREE
        if not properties and element is FREE:
            return FREE
        return Shape(
            "map",
            fields={name: of_schema(child) for name, child in properties.items()},
            element=element,
            atomic=schema.get("x-kubernetes-map-type") == "atomic",
        )
    if kind == "array":
        list_type = schema.get("x-kubernetes-list-type")
        if list_type not in ("set", "map"):
            return ATOMIC
        keys = tuple(schema.get("x-kubernetes-list-map-keys") or ()) if list_type == "map" else ()
        return Shape("list", element=of_schema(schema.get("items") or {}), keys=keys)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return FREE
    return SCALAR


def item_element(shape: Shape, item: Any) -> str:
    """The path element of a list item: ``k:`` its keys, or ``v:`` the item of a set."""
    if shape.keys:
        keyed = {k: item.get(k) for k in sorted(shape.keys)} if isinstance(item, dict) else {}
        return "k:" + orjson.dumps(keyed).decode()
    return "v:" + orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode()


def _items(shape: Shape, value: Any) -> dict[str, Any]:
    """A granular list's items by path element (the first of duplicates wins)."""
    items: dict[str, Any] = {}
    for item in value if isinstance(value, list) else ():
        items.setdefault(item_element(shape, item), item)
    return items


def field_set(shape: Shape, value: Any) -> FieldSet:
    """The fields ``value`` sets: its leaves, each key of its maps that is not a named field,
    each item of its granular lists, and named fields set to null or ``{}``."""
    out: set[Path] = set()
    _fields(shape, value, (), out)
    return frozenset(out)


def _fields(shape: Shape, value: Any, path: Path, out: set[Path]) -> None:
    shape = shape.resolved(value)
    if shape.is_leaf:
        out.add(path)
    elif shape.form == "list":
        assert shape.element is not None
        for element, item in _items(shape, value).items():
            _fields(shape.element, item, (*path, element), out)
            out.add((*path, element))
    elif isinstance(value, dict):
        for key, child in value.items():
            named = key in shape.fields
            sub = shape.fields[key] if named else shape.element
            if sub is None:
                continue
            at = (*path, "f:" + key)
            _fields(sub, child, at, out)
            if not named or child is None or child == {}:
                out.add(at)
    else:
        out.add(path)  # not a map where one is declared: owned as a value


@dataclass(slots=True)
class Comparison:
    """What changed from one object to another, by path."""

    added: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)

    def paths(self) -> set[Path]:
        return self.added | self.removed | self.modified

    def changed(self) -> FieldSet:
        """Added or modified: what the new object's writer takes from the others."""
        return frozenset(self.added | self.modified)

    def without_prefixes(self, prefixes: Iterable[Path]) -> Comparison:
        """The comparison less what lies at or under ``prefixes``."""
        prefixes = tuple(prefixes)
        if not any(p[: len(x)] == x for x in prefixes for p in self.paths()):
            return self

        def keep(paths: set[Path]) -> set[Path]:
            return {p for p in paths if not any(p[: len(x)] == x for x in prefixes)}

        return Comparison(keep(self.added), keep(self.removed), keep(self.modified))


def compare(shape: Shape, old: Any, new: Any) -> Comparison:
    """Leaves added, removed or changed from ``old`` to ``new``; a map or list item that
    appears or disappears is added or removed itself, with everything under it."""
    out = Comparison()
    if old != new or type(old) is not type(new):
        _compare(shape, old, new, (), out)
    return out


def _is_empty(value: Any) -> bool:
    return value is MISSING or ((type(value) is dict or type(value) is list) and not value)


def _compare(shape: Shape, old: Any, new: Any, path: Path, out: Comparison) -> None:
    old_shape = shape.resolved(old if old is not MISSING else new)
    new_shape = shape.resolved(new if new is not MISSING else old)
    leaf = (
        old_shape.is_leaf
        or old_shape is not new_shape
        or (_is_empty(old) and _is_empty(new))
        or not _container_of(old_shape, old)
        or not _container_of(new_shape, new)
    )
    if leaf:
        if old is MISSING:
            out.added.add(path)
        elif new is MISSING:
            out.removed.add(path)
        elif old != new or type(old) is not type(new):
            out.modified.add(path)
        return
    if old_shape.form == "list":
        assert old_shape.element is not None
        olds, news = _items(old_shape, old), _items(old_shape, new)
        for element in olds.keys() | news.keys():
            before, after = olds.get(element, MISSING), news.get(element, MISSING)
            if before != after or type(before) is not type(after):
                _compare(old_shape.element, before, after, (*path, element), out)
    else:
        olds, news = _as_map(old), _as_map(new)
        for key in olds.keys() | news.keys():
            before, after = olds.get(key, MISSING), news.get(key, MISSING)
            if before == after and type(before) is type(after):
                continue  # most of an object: nothing to walk
            sub = old_shape.fields.get(key, old_shape.element)
            if sub is not None:
                _compare(sub, before, after, (*path, "f:" + key), out)
    if path and old is MISSING:
        out.added.add(path)
    elif path and new is MISSING:
        out.removed.add(path)


def _container_of(shape: Shape, value: Any) -> bool:
    """Whether ``value`` is absent or of the container type ``shape`` declares."""
    if value is MISSING:
        return True
    return isinstance(value, list) if shape.form == "list" else isinstance(value, dict)


def _as_map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def merge(shape: Shape, live: Any, config: Any) -> Any:
    """``config`` (an applied configuration) merged into ``live``: maps key by key, granular
    lists item by item (live's order, then the new items in the configuration's order), the
    rest replaced. A key the schema does not declare is copied as given (the schema check
    then prunes it, as ``fieldValidation`` says)."""
    if config is MISSING:
        return live
    if live is MISSING or config is None:
        return config
    shape = shape.resolved(config)
    if shape.is_leaf:
        return config
    if shape.form == "list":
        if not isinstance(live, list) or not isinstance(config, list):
            return config
        return _merged_items(shape, live, config)
    if not isinstance(live, dict) or not isinstance(config, dict):
        return config
    merged = dict(live)
    for key, value in config.items():
        sub = shape.fields.get(key, shape.element) or FREE
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge(sub, live.get(key, MISSING), value)
    return merged


def _merged_items(shape: Shape, live: list[Any], config: list[Any]) -> list[Any]:
    """A granular list merged item by item: the configuration's items in its order, each
    merged with the live item of the same key, and the live items it does not name kept
    where they stood among them (as structured-merge-diff orders them)."""
    assert shape.element is not None
    olds, news = list(_items(shape, live).items()), list(_items(shape, config).items())
    old_items, new_items = dict(olds), dict(news)
    out: list[Any] = []
    done: set[str] = set()
    i = j = 0
    while i < len(olds) or j < len(news):
        if i < len(olds):
            element, item = olds[i]
            if element in done:
                i += 1
                continue
            if element not in new_items:
                out.append(item)
                i += 1
                continue
            if j < len(news) and news[j][0] == element:
                out.append(merge(shape.element, item, news[j][1]))
                done.add(element)
                i, j = i + 1, j + 1
                continue
        element, item = news[j]  # a configured item before the next live one it names
        out.append(merge(shape.element, old_items.get(element, MISSING), item))
        done.add(element)
        j += 1
    return out


def removed(shape: Shape, value: Any, paths: Iterable[Path]) -> Any:
    """``value`` without the fields at ``paths`` (and all under them); ``value`` itself is
    not changed."""
    tree: dict[str, Any] = {}
    for path in paths:
        if not path:
            continue
        node = tree
        for element in path[:-1]:
            node = node.setdefault(element, {})
            if node is _ALL:
                break
        else:
            node[path[-1]] = _ALL
    return _remove(shape, copy.deepcopy(value), tree)


_ALL: dict[str, Any] = {}  # a marker: the whole subtree goes


def _remove(shape: Shape, value: Any, tree: dict[str, Any]) -> Any:
    shape = shape.resolved(value)
    if shape.form == "list" and isinstance(value, list):
        assert shape.element is not None
        kept = []
        for item in value:
            sub = tree.get(item_element(shape, item))
            if sub is _ALL:
                continue
            kept.append(item if sub is None else _remove(shape.element, item, sub))
        return kept
    if isinstance(value, dict):
        for key in list(value):
            sub = tree.get("f:" + key)
            if sub is _ALL:
                del value[key]
            elif sub is not None:
                child = shape.fields.get(key, shape.element) or FREE
                value[key] = _remove(child, value[key], sub)
    return value


def with_named_parents(shape: Shape, paths: FieldSet) -> FieldSet:
    """``paths`` and every named field above one of them (structured-merge-diff's
    EnsureNamedFieldsAreMembers): pruning removes a structure field only when no one owns
    anything in it."""
    out = set(paths)
    for path in paths:
        current: Shape | None = shape
        for i, element in enumerate(path[:-1]):
            if current is None:
                break
            if current.form == "map" and element[2:] in current.fields and element[0] == "f":
                out.add(path[: i + 1])
            current = current.child(element)
    return frozenset(out)
