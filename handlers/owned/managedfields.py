"""Who owns which field (``metadata.managedFields``), kept on every write as kube's field
manager keeps it, and server-side apply's merge by ownership.

An ``Update`` (create, update, patch) gives its manager the fields it added or changed and
takes them from every other manager. An ``Apply`` owns exactly the fields of its applied
configuration: a field another manager owns with a different value is a conflict unless
forced, and a field it owned alone and no longer applies is removed from the object. Entries
are kept per manager, operation, version (for updates) and subresource, each with the time
it last changed the object. What a subresource's requests may not change is never owned
through it (:attr:`Strategy.reset_fields`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from handlers.api import fieldsets, objectmeta, shapes
from handlers.api.contract import ApiRequest, Deps
from handlers.api.errors import ApiError
from handlers.api.fieldsets import EMPTY, FieldSet, Path
from handlers.api.metavalidation import FIELD_MANAGER_MAX
from handlers.api.shapes import MISSING, Shape

APPLY, UPDATE = "Apply", "Update"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
BEFORE_FIRST_APPLY = "before-first-apply"
"""Owns what an object held when it was first applied, if nothing was tracked before."""
ANCIENT_CHANGES = "ancient-changes"
MAX_UPDATE_MANAGERS = 10
"""kube's cap: older Update entries are merged into one ``ancient-changes`` entry."""
KUBECTL = "kubectl"
"""The manager of ``kubectl apply --server-side``: it alone takes over fields that its
client-side apply set (the last-applied annotation), as kube allows."""

_META_STRIPPED = (
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
)
_STRIPPED = frozenset(
    {("f:apiVersion",), ("f:kind",), ("f:metadata",)}
    | {("f:metadata", "f:" + name) for name in _META_STRIPPED}
)
"""Fields no manager owns: the object's identity and what the server sets."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One manager's fields."""

    manager: str
    operation: str
    api_version: str
    subresource: str
    fields: FieldSet
    time: str | None = None
    source: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """The entry as it was read, written back as is while unchanged (no re-encoding)."""

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """Entries with equal identities are one: an applier's across versions."""
        version = "" if self.operation == APPLY else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def describe(self) -> str:
        """The manager as kube's conflict messages name it; ``at <time>`` only for an entry
        with a time, which a conflict's never has (kube names managers by identity)."""
        text = orjson.dumps(self.manager).decode()
        if self.subresource:
            text += f" with subresource {orjson.dumps(self.subresource).decode()}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
            if self.time:
                text += f" at {self.time}"
        return text

    def encoded(self) -> Mapping[str, Any]:
        if self.source is not None:
            return self.source
        entry: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time:
            entry["time"] = self.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = fieldsets.to_fields_v1(self.fields)
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


Managers = dict[tuple[str, str, str, str], Entry]


def decoded(entries: Any) -> Managers | None:
    """The managers recorded in an object; None when the entries are not valid ones."""
    if not isinstance(entries, list):
        return None
    managers: Managers = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("operation") not in (APPLY, UPDATE):
            return None
        if not entry.get("apiVersion") or entry.get("fieldsType") != "FieldsV1":
            return None
        try:
            fields = fieldsets.from_fields_v1(entry.get("fieldsV1") or {})
        except ValueError:
            return None
        one = Entry(
            str(entry.get("manager") or ""),
            entry["operation"],
            str(entry["apiVersion"]),
            str(entry.get("subresource") or ""),
            fields,
            entry.get("time"),
            entry,
        )
        managers[one.identity] = one
    return managers


def encoded(managers: Managers) -> list[Mapping[str, Any]]:
    """The entries in kube's order: appliers first, then by time, manager, version."""
    ordered = sorted(
        managers.values(),
        key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource),
    )
    return [entry.encoded() for entry in ordered]


def manager_name(request: ApiRequest) -> str:
    """``fieldManager``, else the User-Agent up to its first ``/``, printable characters
    only, at most 128 bytes (as kube names a manager that gives no name)."""
    if request.options.field_manager:
        return request.options.field_manager
    name = ""
    for char in request.user_agent.split("/")[0]:
        if not char.isprintable():
            continue
        if len((name + char).encode()) > FIELD_MANAGER_MAX:
            break
        name += char
    return name


@dataclass(frozen=True, slots=True)
class Operation:
    """One write's manager and what its subresource may own."""

    shape: Shape
    manager: str
    api_version: str
    subresource: str
    ignored: tuple[Path, ...]
    tracked: bool = True
    """False only to measure what tracking costs: nothing recorded, apply merges plainly."""

    @classmethod
    def of(cls, request: ApiRequest, deps: Deps) -> Operation:
        kind = request.kind
        return cls(
            kind.shape,
            manager_name(request),
            kind.api_version,
            request.subresource or "",
            kind.strategy(request.subresource).reset_fields,
            deps.managed_fields,
        )

    def _owned(self, value: Any) -> FieldSet:
        return fieldsets.without_prefixes(shapes.field_set(self.shape, value), self.ignored)

    def _compare(self, old: Any, new: Any) -> shapes.Comparison:
        """What changed that the request may own (managedFields are no one's: stripped)."""
        return shapes.compare(self.shape, old, new).without_prefixes(self.ignored)

    def updated(self, live: Mapping[str, Any] | None, new: dict[str, Any]) -> None:
        """Record an Update of ``live`` (None: a create) into ``new``: its manager takes the
        fields it added or changed. The managers ``new`` carries are honoured (``[]`` or
        ``[{}]`` resets them), else those of ``live``; an existing object that tracks
        nothing stays so, as in kube."""
        meta = new.setdefault("metadata", {})
        if not self.tracked:
            return
        managers = self._managers_of(live, meta)
        if live is not None and not managers:
            meta.pop("managedFields", None)
            return
        cmp = self._compare(live if live is not None else MISSING, new)
        managers = _taken(managers, cmp, None)
        owned = fieldsets.without_prefixes(cmp.changed(), self.ignored) - _STRIPPED
        if owned:
            identity = (self.manager, UPDATE, self.api_version, self.subresource)
            if (previous := managers.get(identity)) is not None:
                owned |= previous.fields
            managers[identity] = Entry(*identity, owned, objectmeta.now())
        _store(meta, _capped(managers))

    def _managers_of(self, live: Mapping[str, Any] | None, meta: Mapping[str, Any]) -> Managers:
        given = meta.get("managedFields")
        if given in ([], [{}]):
            return {}
        if not self.subresource and given is not None:
            managers = decoded(given)
            if managers:
                return managers
        if live is None:
            return {}
        return decoded((live.get("metadata") or {}).get("managedFields") or []) or {}

    def applied(
        self, live: Mapping[str, Any] | None, config: Mapping[str, Any], *, force: bool
    ) -> dict[str, Any]:
        """``config`` applied to ``live`` (None: a create) by ownership, with its managers;
        409 on fields others own with other values, unless forced."""
        if config.get("metadata", {}).get("managedFields") is not None:
            raise ApiError(400, "BadRequest", "metadata.managedFields must be nil")
        base: Any = _unmanaged(live) if live is not None else {}
        if not self.tracked:
            return dict(shapes.merge(self.shape, base, config))
        managers: Managers = {}
        if live is not None:
            managers = decoded(live.get("metadata", {}).get("managedFields") or []) or {}
            if not managers:  # nothing was tracked: what is there belongs to no applier
                first = Entry(BEFORE_FIRST_APPLY, UPDATE, self.api_version, self.subresource, EMPTY)
                owned = self._compare(MISSING, base).changed() - _STRIPPED
                if owned:
                    managers[first.identity] = replace(first, fields=owned, time=objectmeta.now())
        entry = Entry(self.manager, APPLY, self.api_version, self.subresource, self._owned(config))
        last = managers.get(entry.identity)
        managers[entry.identity] = entry
        merged = shapes.merge(self.shape, base, _unmanaged(config))
        if last is not None:
            merged = self._pruned(merged, managers, last.fields)
        cmp = self._compare(base, merged)
        conflicts = _conflicts(managers, cmp, entry.identity)
        if conflicts and not force and not self._client_side_owned(base, conflicts):
            raise conflict_error(conflicts)
        managers = _taken(managers, cmp, entry.identity)
        if entry.identity in managers:
            when = objectmeta.now() if merged != base else last.time if last else None
            managers[entry.identity] = replace(entry, time=when)
        merged.setdefault("metadata", {})
        _store(merged["metadata"], _capped(managers))
        return dict(merged)

    def _pruned(self, merged: Any, managers: Managers, last: FieldSet) -> Any:
        """Remove what the applier applied last time, no longer applies, and no one owns."""
        owned = frozenset().union(*(m.fields for m in managers.values()))
        owned = shapes.with_named_parents(self.shape, owned)
        gone = shapes.with_named_parents(self.shape, last) - owned
        return shapes.removed(self.shape, merged, gone) if gone else merged

    def _client_side_owned(self, live: Mapping[str, Any], conflicts: Managers) -> bool:
        """Whether every conflict is on a field kubectl's client-side apply set to the value
        it still has, when the applier is kubectl (its migration to server-side apply)."""
        if self.manager != KUBECTL:
            return False
        annotation = (live.get("metadata", {}).get("annotations") or {}).get(LAST_APPLIED)
        if not annotation:
            return False
        try:
            last_applied = orjson.loads(annotation)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(last_applied, dict):
            return False
        cmp = shapes.compare(self.shape, last_applied, _unmanaged(live))
        allowed = (
            shapes.field_set(self.shape, last_applied) - cmp.added - cmp.removed - cmp.modified
        )
        return all(entry.fields <= allowed for entry in conflicts.values())


def _unmanaged(obj: Any) -> Any:
    """``obj`` without its managedFields (compared and merged without them)."""
    if obj is MISSING or not isinstance(obj, Mapping) or "metadata" not in obj:
        return obj
    meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    return {**obj, "metadata": meta}


def _conflicts(
    managers: Managers, cmp: shapes.Comparison, applier: tuple[str, str, str, str]
) -> Managers:
    changed = cmp.changed()
    out: Managers = {}
    for identity, entry in managers.items():
        if identity != applier and (taken := entry.fields & changed):
            out[identity] = replace(entry, fields=taken, time=None)  # as kube names them
    return out


def _taken(
    managers: Managers, cmp: shapes.Comparison, writer: tuple[str, str, str, str] | None
) -> Managers:
    """Every manager but ``writer`` loses what the write changed or removed."""
    lost = cmp.changed() | cmp.removed
    out: Managers = {}
    for identity, entry in managers.items():
        fields = entry.fields if identity == writer else entry.fields - lost
        if fields - _STRIPPED:
            out[identity] = entry if fields == entry.fields else _changed(entry, fields)
    return out


def _capped(managers: Managers) -> Managers:
    """At most :data:`MAX_UPDATE_MANAGERS` Update entries: the oldest merge into one."""
    updaters = sorted(
        (e for e in managers.values() if e.operation == UPDATE),
        key=lambda e: (e.time or "", e.identity),
    )
    excess = len(updaters) - MAX_UPDATE_MANAGERS
    if excess <= 0:
        return managers
    oldest = updaters[: excess + 1]
    bucket = Entry(
        ANCIENT_CHANGES,
        UPDATE,
        oldest[-1].api_version,
        "",
        frozenset().union(*(e.fields for e in oldest)),
        oldest[-1].time,
    )
    out = {k: v for k, v in managers.items() if v not in oldest}
    out[bucket.identity] = bucket
    return out


def _store(meta: dict[str, Any], managers: Managers) -> None:
    kept = {}
    for identity, entry in managers.items():
        if fields := entry.fields - _STRIPPED:
            kept[identity] = entry if fields == entry.fields else _changed(entry, fields)
    if kept:
        meta["managedFields"] = encoded(kept)
    else:
        meta.pop("managedFields", None)


def _changed(entry: Entry, fields: FieldSet) -> Entry:
    return replace(entry, fields=fields, source=None)


def conflict_error(conflicts: Managers) -> ApiError:
    """kube's 409 for an apply that conflicts: one line per manager and field."""
    pairs = [
        (entry, path)
        for entry in sorted(conflicts.values(), key=lambda e: e.describe())
        for path in fieldsets.iterate(entry.fields)
    ]
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {entry.describe()}",
            "field": fieldsets.path_string(path),
        }
        for entry, path in pairs
    ]
    if len(pairs) == 1:
        entry, path = pairs[0]
        message = (
            f"Apply failed with 1 conflict: conflict with {entry.describe()}: "
            f"{fieldsets.path_string(path)}"
        )
    else:
        lines: list[str] = []
        for entry in sorted(conflicts.values(), key=lambda e: e.describe()):
            lines.append(f"conflicts with {entry.describe()}:")
            lines += [f"- {fieldsets.path_string(p)}" for p in fieldsets.iterate(entry.fields)]
        message = f"Apply failed with {len(pairs)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})
