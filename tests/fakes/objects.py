"""Objects in the fake cluster: Tasks (example.example.com/v1) and core Events, as kube serves them.

One resourceVersion counter for everything (as etcd gives kube-apiserver), a history of changes
for watches from a resourceVersion (trimmed by ``compact``), list with label and field selectors
and ``limit``/``continue``, watch with selectors (an object leaving the selector is DELETED),
bookmarks, ``sendInitialEvents`` (kube 1.35's WatchList; its options' validation is not
modelled) and ``timeoutSeconds``, create (with ``generateName``), PUT and PATCH (merge, JSON,
a simple apply; strategic merge only for core kinds: ``tests.fakes.patches``) with
resourceVersion preconditions, and DELETE that honours finalizers. Selectors are the fake's own
(``tests.fakes.selectors``), as are its errors (``tests.fakes.errors``). Not modelled:
continued list pages read the present state, not the first page's snapshot; a DELETE answers
the object, where kube may answer a Success Status.
``install`` adds the routes to a :class:`tests.fakes.cluster.FakeCluster`.
"""

from __future__ import annotations

import base64
import bisect
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from tests.fakes.errors import StatusError
from tests.fakes.patches import MERGE_PATCH, check_media_type, patched
from tests.fakes.selectors import Getter, selector

if TYPE_CHECKING:
    from tests.fakes.cluster import Call, FakeCluster, Reply


def _path(*keys: str) -> Getter:
    def get(obj: Mapping[str, Any]) -> str:
        value: Any = obj
        for key in keys:
            value = (value or {}).get(key) if isinstance(value, Mapping) else None
        return "" if value is None else str(value)

    return get


@dataclass(frozen=True)
class Kind:
    """A resource of the fake and the paths it is served under."""

    plural: str
    api_version: str
    kind: str
    fields: Mapping[str, Getter]  # selectable besides metadata.name and metadata.namespace
    generation: bool  # metadata.generation moves with the spec (custom resources)
    namespaced: bool = True

    @property
    def prefix(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"

    @property
    def qualified(self) -> str:
        group = self.api_version.rpartition("/")[0]
        return f"{self.plural}.{group}" if group else self.plural


TASKS = Kind(
    "tasks",
    "example.example.com/v1",
    "Task",
    {"spec.priority": _path("spec", "priority"), "spec.taskState": _path("spec", "taskState")},
    generation=True,
)
EVENTS = Kind(
    "events",
    "v1",
    "Event",
    {
        "involvedObject.uid": _path("involvedObject", "uid"),
        "involvedObject.name": _path("involvedObject", "name"),
        "involvedObject.kind": _path("involvedObject", "kind"),
        "reason": _path("reason"),
        "type": _path("type"),
    },
    generation=False,
)
NAMESPACES = Kind(
    "namespaces", "v1", "Namespace", {"status.phase": _path("status", "phase")}, False, False
)
"""Cluster-scoped. As kube's namespace strategy: created ``Active`` with the ``kubernetes``
finalizer in its spec; deleted, it turns ``Terminating`` and stays until that finalizer is
gone (the namespace controller's work: :meth:`Objects.finalize_namespace`)."""
CONFIGMAPS = Kind("configmaps", "v1", "ConfigMap", {}, generation=False)
"""Namespaced; what admission policies read their parameters from (``paramKind``)."""
ADMISSION_GROUP = "admissionregistration.k8s.io/v1"
VALIDATING_POLICIES = Kind(
    "validatingadmissionpolicies",
    ADMISSION_GROUP,
    "ValidatingAdmissionPolicy",
    {},
    generation=True,
    namespaced=False,
)
VALIDATING_POLICY_BINDINGS = Kind(
    "validatingadmissionpolicybindings",
    ADMISSION_GROUP,
    "ValidatingAdmissionPolicyBinding",
    {},
    generation=True,
    namespaced=False,
)
MUTATING_WEBHOOKS = Kind(
    "mutatingwebhookconfigurations",
    ADMISSION_GROUP,
    "MutatingWebhookConfiguration",
    {},
    generation=True,
    namespaced=False,
)
VALIDATING_WEBHOOKS = Kind(
    "validatingwebhookconfigurations",
    ADMISSION_GROUP,
    "ValidatingWebhookConfiguration",
    {},
    generation=True,
    namespaced=False,
)
"""Cluster-scoped, stored as given: kube's validation of policies and webhook configurations
(their CEL compiled by kube-apiserver) is not modelled, so a test can store one kube would
refuse."""
LEASES = Kind(
    "leases",
    "coordination.k8s.io/v1",
    "Lease",
    {"spec.holderIdentity": _path("spec", "holderIdentity")},
    generation=False,
)
"""Namespaced; what controllers elect their leader through (an update on the
resourceVersion read is the lock: two candidates cannot both win)."""
KINDS = (
    TASKS,
    EVENTS,
    NAMESPACES,
    CONFIGMAPS,
    VALIDATING_POLICIES,
    VALIDATING_POLICY_BINDINGS,
    MUTATING_WEBHOOKS,
    VALIDATING_WEBHOOKS,
    LEASES,
)

GENERATE_NAME_ATTEMPTS = 8
"""kube's ``maxNameGenerationCreateAttempts``."""
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""The characters of kube's generated name suffixes (no vowels, no look-alikes)."""


@dataclass
class Change:
    revision: int
    plural: str
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None = None
    at: float = field(default_factory=time.monotonic)
    """When it was committed (``time.monotonic``): what a benchmark times writes by."""


@dataclass
class Objects:
    """The fake cluster's objects; every attribute may be changed by a test."""

    bookmark_seconds: float = 1.0
    compacted: int = 0  # watches from an older resourceVersion get 410
    revision: int = 0
    items: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    history: list[Change] = field(default_factory=list)
    cut: int = 0  # bumped by ``cut_watches``: open watches end
    changed: threading.Condition = field(default_factory=threading.Condition)

    # -- for tests -------------------------------------------------------------------------

    def put(self, kind: Kind, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create an object directly (as another client would), returning it as stored."""
        namespace = obj["metadata"].get("namespace", "") if kind.namespaced else ""
        return self.create(kind, namespace, dict(obj))

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        with self.changed:
            found = self.items.get((kind.plural, namespace, name))
            return None if found is None else _copy(found)

    def read(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        """The object, or kube's 404."""
        with self.changed:
            return _copy(self._current(kind, namespace, name))

    def all(self, kind: Kind) -> list[dict[str, Any]]:
        with self.changed:
            return [
                orjson.loads(orjson.dumps(obj))
                for key, obj in sorted(self.items.items())
                if key[0] == kind.plural
            ]

    def compact(self) -> None:
        """Forget the history: watches from any older resourceVersion get 410."""
        with self.changed:
            self.compacted = self.revision
            self.history.clear()

    def cut_watches(self) -> None:
        """End every open watch (clients resume from their last resourceVersion)."""
        with self.changed:
            self.cut += 1
            self.changed.notify_all()

    # -- writes ----------------------------------------------------------------------------

    def create(self, kind: Kind, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        """kube's create; with ``generateName`` a colliding name is drawn again, up to
        ``maxNameGenerationCreateAttempts`` (8) attempts in all, as kube-apiserver does."""
        metadata = obj.get("metadata") or {}
        if metadata.get("name") or not metadata.get("generateName"):
            return self._create(kind, namespace, obj, dict(metadata))
        for _ in range(GENERATE_NAME_ATTEMPTS - 1):
            try:
                return self._create(kind, namespace, obj, _generated(metadata))
            except StatusError as error:
                if error.reason != "AlreadyExists":
                    raise
        return self._create(kind, namespace, obj, _generated(metadata))

    def _create(
        self, kind: Kind, namespace: str, obj: dict[str, Any], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        name = metadata.get("name")
        if not name:
            raise StatusError(
                422, "Invalid", f'{kind.kind} "" is invalid: metadata.name: Required value'
            )
        with self.changed:
            if (kind.plural, namespace, name) in self.items:
                raise StatusError(
                    409,
                    "AlreadyExists",
                    f'{kind.qualified} "{name}" already exists',
                    {"name": name, "kind": kind.plural},
                )
            metadata.update(uid=str(uuid.uuid4()), creationTimestamp=_now())
            if kind.namespaced:
                metadata["namespace"] = namespace
            else:
                metadata.pop("namespace", None)
            if kind.generation:
                metadata["generation"] = 1
            _check_labels(kind, name, metadata)
            stored = {**obj, "apiVersion": kind.api_version, "kind": kind.kind}
            stored["metadata"] = metadata
            if kind is NAMESPACES:
                stored["spec"] = {"finalizers": ["kubernetes"], **(obj.get("spec") or {})}
                stored["status"] = {"phase": "Active"}
            return self._commit(kind, "ADDED", stored, None)

    def update(self, kind: Kind, namespace: str, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.changed:
            current = self._current(kind, namespace, name)
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if version and version != current["metadata"]["resourceVersion"]:
                raise _conflict(kind, name)
            return self._replace(kind, current, obj)

    def patch(
        self, kind: Kind, namespace: str, name: str, patch: Any, content_type: str = MERGE_PATCH
    ) -> dict[str, Any]:
        """A merge, JSON or apply patch (a strategic merge patch too, for core kinds: see
        ``tests.fakes.patches``); a resourceVersion the patch sets is a precondition."""
        core = kind.api_version == "v1"
        check_media_type(content_type, strategic=core)
        with self.changed:
            current = self._current(kind, namespace, name)
            changed = patched(content_type, _copy(current), patch, strategic=core)
            if changed["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                raise _conflict(kind, name)
            return self._replace(kind, current, changed)

    def delete(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        with self.changed:
            current = self._current(kind, namespace, name)
            metadata = current["metadata"]
            if kind is NAMESPACES and (current.get("spec") or {}).get("finalizers"):
                if metadata.get("deletionTimestamp"):
                    return current
                deleting = _copy(current)
                deleting["metadata"]["deletionTimestamp"] = _now()
                deleting["status"] = {"phase": "Terminating"}
                return self._commit(kind, "MODIFIED", deleting, current)
            if not metadata.get("finalizers"):
                return self._commit(kind, "DELETED", current, current)
            if metadata.get("deletionTimestamp"):
                return current
            deleting = _copy(current)
            deleting["metadata"]["deletionTimestamp"] = _now()
            if kind.generation:
                deleting["metadata"]["generation"] = metadata.get("generation", 1) + 1
            return self._commit(kind, "MODIFIED", deleting, current)

    def finalize_namespace(self, name: str) -> dict[str, Any]:
        """The namespace controller's last step: the spec's finalizers removed (its
        ``/finalize`` call), which ends a terminating namespace."""
        with self.changed:
            current = self._current(NAMESPACES, "", name)
            finalized = _copy(current)
            finalized["spec"] = {**(current.get("spec") or {}), "finalizers": []}
            gone = bool(current["metadata"].get("deletionTimestamp"))
            return self._commit(NAMESPACES, "DELETED" if gone else "MODIFIED", finalized, current)

    def _current(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        found = self.items.get((kind.plural, namespace, name))
        if found is None:
            raise StatusError(
                404,
                "NotFound",
                f'{kind.qualified} "{name}" not found',
                {"name": name, "kind": kind.plural},
            )
        return found

    def _replace(self, kind: Kind, current: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
        old_meta = current["metadata"]
        metadata = dict(obj.get("metadata") or {})
        for kept in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
            if kept in old_meta:
                metadata[kept] = old_meta[kept]
        if kind.generation:
            spec_changed = obj.get("spec") != current.get("spec")
            metadata["generation"] = old_meta.get("generation", 1) + (1 if spec_changed else 0)
        _check_labels(kind, metadata["name"], metadata)
        updated = {**obj, "apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata}
        if metadata.get("deletionTimestamp") and not metadata.get("finalizers"):
            return self._commit(kind, "DELETED", updated, current)
        return self._commit(kind, "MODIFIED", updated, current)

    def _commit(
        self, kind: Kind, type_: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Store (or remove) ``obj`` at the next revision and wake the watches."""
        self.revision += 1
        obj = _copy(obj)
        obj["metadata"]["resourceVersion"] = str(self.revision)
        key = (kind.plural, _ns(obj), obj["metadata"]["name"])
        if type_ == "DELETED":
            self.items.pop(key, None)
        else:
            self.items[key] = obj
        self.history.append(Change(self.revision, kind.plural, type_, obj, old))
        self.changed.notify_all()
        return _copy(obj)

    # -- reads -----------------------------------------------------------------------------

    def listing(
        self, kind: Kind, namespace: str | None, query: Mapping[str, str]
    ) -> dict[str, Any]:
        selects = _selector(kind, query)
        limit = int(query.get("limit") or 0)
        after = _decode(query["continue"]) if query.get("continue") else ""
        with self.changed:
            matching = [
                obj
                for (plural, ns, name), obj in sorted(self.items.items())
                if plural == kind.plural
                and namespace in (None, ns)
                and f"{ns}/{name}" > after
                and selects(obj)
            ]
            revision = self.revision
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if limit and len(matching) > limit:
            matching = matching[:limit]
            last = matching[-1]["metadata"]
            meta["continue"] = _encode(f"{last.get('namespace', '')}/{last['name']}")
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.api_version,
            "metadata": meta,
            "items": [_listed(kind, obj) for obj in matching],
        }

    def watch(
        self, kind: Kind, namespace: str | None, query: Mapping[str, str]
    ) -> Iterator[dict[str, Any]]:
        """The watch's events; selectors and the start are checked before the first one."""
        selects = _selector(kind, query)
        timeout = float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        version = query.get("resourceVersion", "")
        send = query.get("sendInitialEvents")  # WatchList (kube 1.35): the state, then a mark
        with self.changed:
            cut = self.cut
            if send == "true" or (send is None and version in ("", "0")):
                initial = [
                    {"type": "ADDED", "object": obj}
                    for (plural, ns, _), obj in sorted(self.items.items())
                    if plural == kind.plural and namespace in (None, ns) and selects(obj)
                ]
                if send == "true" and bookmarks:
                    initial.append(_bookmark(kind, self.revision, initial_events_end=True))
                cursor = self.revision
            elif version in ("", "0"):  # sendInitialEvents=false: the changes from now
                initial, cursor = [], self.revision
            else:
                initial, cursor = [], int(version)
                if cursor < self.compacted:
                    initial = [_expired(cursor, self.compacted)]
                    cursor = -1
            initial = orjson.loads(orjson.dumps(initial))
        return self._events(kind, namespace, selects, initial, cursor, cut, timeout, bookmarks)

    def _events(
        self,
        kind: Kind,
        namespace: str | None,
        selects: Callable[[Mapping[str, Any]], bool],
        initial: list[dict[str, Any]],
        cursor: int,
        cut: int,
        timeout: float,
        bookmarks: bool,
    ) -> Iterator[dict[str, Any]]:
        yield from initial
        if cursor < 0:
            return
        deadline = time.monotonic() + timeout
        bookmark_at = time.monotonic() + self.bookmark_seconds
        while True:
            with self.changed:
                while True:
                    now = time.monotonic()
                    if self.cut != cut or now >= deadline:
                        return
                    new = self.history[bisect.bisect_right(self.history, cursor, key=_revision) :]
                    if new or (bookmarks and now >= bookmark_at):
                        break
                    self.changed.wait(min(deadline, bookmark_at if bookmarks else deadline) - now)
                cursor = max([cursor, *(c.revision for c in new)])
                events = []
                for change in new:
                    if change.plural == kind.plural and namespace in (None, _ns(change.obj)):
                        event = _event(change, selects)
                        if event is not None:
                            events.append(event)
                if bookmarks and time.monotonic() >= bookmark_at:
                    bookmark_at = time.monotonic() + self.bookmark_seconds
                    events.append(_bookmark(kind, self.revision))
                    cursor = self.revision
                events = orjson.loads(orjson.dumps(events))
            yield from events


LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _check_labels(kind: Kind, name: str, metadata: Mapping[str, Any]) -> None:
    """kube's validation of label values (apimachinery ``IsValidLabelValue``): at most 63
    characters of the label alphabet; a 422 Invalid in kube's words otherwise."""
    causes = []
    for value in (metadata.get("labels") or {}).values():
        problems = []
        if len(value) > 63:
            problems.append("must be no more than 63 characters")
        if not LABEL_VALUE.fullmatch(value):
            problems.append(LABEL_VALUE_MESSAGE)
        field = "metadata.labels"
        causes += [
            {
                "reason": "FieldValueInvalid",
                "message": f'Invalid value: "{value}": {p}',
                "field": field,
            }
            for p in problems
        ]
    if causes:
        group = kind.api_version.rpartition("/")[0]
        listed = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
        joined = listed if len(causes) == 1 else f"[{listed}]"
        raise StatusError(
            422,
            "Invalid",
            f'{kind.kind}.{group} "{name}" is invalid: {joined}',
            {"name": name, "group": group, "kind": kind.kind, "causes": causes},
        )


def _conflict(kind: Kind, name: str) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        {"name": name, "kind": kind.plural},
    )


def _event(change: Change, selects: Callable[[Mapping[str, Any]], bool]) -> dict[str, Any] | None:
    """What a watch with a selector sees of a change: entering is ADDED, leaving DELETED."""
    now = selects(change.obj)
    before = change.old is not None and selects(change.old)
    if change.type == "DELETED":
        return {"type": "DELETED", "object": change.obj} if now or before else None
    if now:
        return {"type": "MODIFIED" if before else "ADDED", "object": change.obj}
    if before:
        return {"type": "DELETED", "object": change.obj}
    return None


def _bookmark(kind: Kind, revision: int, *, initial_events_end: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_events_end:
        metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {
        "type": "BOOKMARK",
        "object": {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": metadata},
    }


def _expired(requested: int, oldest: int) -> dict[str, Any]:
    return {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {requested} ({oldest})",
            "reason": "Expired",
            "code": 410,
        },
    }


def _revision(change: Change) -> int:
    return change.revision


def _selector(kind: Kind, query: Mapping[str, str]) -> Callable[[Mapping[str, Any]], bool]:
    return selector(query.get("labelSelector", ""), query.get("fieldSelector", ""), kind.fields)


def _listed(kind: Kind, obj: Mapping[str, Any]) -> dict[str, Any]:
    """An item as a list shows it: core lists leave out each item's kind and apiVersion."""
    item = _copy(obj)
    if kind.api_version == "v1":
        del item["kind"], item["apiVersion"]
    return item


def _copy(obj: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = orjson.loads(orjson.dumps(obj))
    return copied


def _ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


def _generated(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata with a name drawn as kube draws it: generateName and 5 random characters."""
    suffix = "".join(secrets.choice(NAME_ALPHABET) for _ in range(5))
    return {**metadata, "name": metadata["generateName"] + suffix}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode(token: str) -> str:
    return base64.urlsafe_b64decode(token.encode()).decode()


# -- routes ---------------------------------------------------------------------------------

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def discovery() -> dict[str, dict[str, Any]]:
    """Legacy discovery of the fake's kinds, as kube-apiserver answers a client that does not
    ask for aggregated discovery (kubectl then falls back to it): ``/api``, ``/api/v1``,
    ``/apis`` and ``/apis/<group>/<version>``, so that kubectl can ``get tasks`` here."""
    by_version: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        by_version.setdefault(kind.api_version, []).append(
            {
                "name": kind.plural,
                "singularName": kind.kind.lower(),
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": VERBS,
            }
        )
    documents: dict[str, dict[str, Any]] = {
        "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    }
    groups = []
    for api_version, resources in by_version.items():
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        documents[path] = {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": api_version,
            "resources": resources,
        }
        if "/" in api_version:
            group, version = api_version.split("/")
            found = {"groupVersion": api_version, "version": version}
            groups.append({"name": group, "versions": [found], "preferredVersion": found})
    documents["/apis"] = {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    return documents


def install(fake: FakeCluster, objects: Objects) -> None:
    """Serve ``objects`` from ``fake``: list/watch (cluster-wide and per namespace), get,
    create, update, patch and delete of each kind."""
    from tests.fakes.cluster import Reply, status

    def answer(work: Callable[[], Reply]) -> Reply:
        try:
            return work()
        except StatusError as error:
            return status(error.code, error.message, reason=error.reason, details=error.details)

    for path, document in discovery().items():

        def discover(call: Call, document: dict[str, Any] = document) -> Reply:
            return Reply(200, document)

        fake.route("GET", re.escape(path), discover)
    for kind in KINDS:
        many = rf"{kind.prefix}(?:/namespaces/(?P<namespace>[^/]+))?/{kind.plural}"
        one = rf"{kind.prefix}/namespaces/(?P<namespace>[^/]+)/{kind.plural}/(?P<name>[^/]+)"
        if not kind.namespaced:
            many, one = (
                rf"{kind.prefix}/{kind.plural}",
                rf"{kind.prefix}/{kind.plural}/(?P<name>[^/]+)",
            )

        def collection(call: Call, kind: Kind = kind) -> Reply:
            ns, query = call.params.get("namespace"), call.request.query
            if query.get("watch") in ("true", "1"):
                return answer(lambda: Reply(200, None, stream=objects.watch(kind, ns, query)))
            return answer(lambda: Reply(200, objects.listing(kind, ns, query)))

        def create(call: Call, kind: Kind = kind) -> Reply:
            namespace = call.params.get("namespace") or ""
            return answer(lambda: Reply(201, objects.create(kind, namespace, call.request.body)))

        def get(call: Call, kind: Kind = kind) -> Reply:
            ns, name = call.params.get("namespace") or "", call.params["name"]
            return answer(lambda: Reply(200, objects.read(kind, ns, name)))

        def update(call: Call, kind: Kind = kind) -> Reply:
            ns, name, body = (
                call.params.get("namespace") or "",
                call.params["name"],
                call.request.body,
            )
            return answer(lambda: Reply(200, objects.update(kind, ns, name, body)))

        def patch(call: Call, kind: Kind = kind) -> Reply:
            ns, name, body = (
                call.params.get("namespace") or "",
                call.params["name"],
                call.request.body,
            )
            media = call.request.headers.get("content-type", "").split(";")[0].strip()
            return answer(lambda: Reply(200, objects.patch(kind, ns, name, body, media)))

        def delete(call: Call, kind: Kind = kind) -> Reply:
            ns, name = call.params.get("namespace") or "", call.params["name"]
            return answer(lambda: Reply(200, objects.delete(kind, ns, name)))

        fake.route("GET", many, collection)
        fake.route("POST", many, create)
        fake.route("GET", one, get)
        fake.route("PUT", one, update)
        fake.route("PATCH", one, patch)
        fake.route("DELETE", one, delete)
