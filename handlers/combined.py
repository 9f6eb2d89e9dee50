"""combinedtasks: the cluster's Tasks joined with their Events, never N+1.

Tasks are read from the cluster on every request, with the caller's paging, selectors and
resourceVersion passed through (and no limit the caller did not ask for); their Events come
from the per-process :class:`k8s.events.TaskEvents`, one LIST per namespace per TTL window
however many tasks are shown. The server reads with its own identity, so it first checks
that the caller may list tasks and events itself: combinedtasks reveal nothing more.

A watch relays the cluster's Task watch, each event joined with the task's Events, and
follows the labelled Events too, so that a newly recorded Event reaches open watches as a
MODIFIED CombinedTask.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any, TypeVar

import orjson

from handlers.contract import (
    ApiRequest,
    Deps,
    ListResult,
    ObjectResult,
    RelayResult,
    Upstream,
    WatchEvent,
)
from handlers.errors import GROUP_VERSION, ApiError, service_unavailable
from handlers.selectors import object_selector
from handlers.watching import lifetime
from k8s.client import ClusterError, WatchStream
from k8s.events import TASK_UID

log = logging.getLogger("apiserver.combined")

TASK_GROUP = "example.example.com"
TASKS = f"/apis/{TASK_GROUP}/v1"
KIND = "CombinedTask"
LISTED = ("labelSelector", "fieldSelector", "limit", "continue", "resourceVersion")
WATCHED = (
    "labelSelector",
    "fieldSelector",
    "resourceVersion",
    "resourceVersionMatch",
    "allowWatchBookmarks",
    "sendInitialEvents",
)
_PASSED_CODES = frozenset({400, 403, 404, 410, 422, 429})
_TICK = 1.0  # longest wait before looking at the deadline and at shutdown
_RETRY = 1.0  # pause before re-watching Events after the cluster failed

T = TypeVar("T")


def get(request: ApiRequest, deps: Deps) -> ObjectResult:
    """One CombinedTask (not the one-item list the tutorial returns)."""
    upstream = _upstream(request, deps)
    namespace, name = request.namespace or "", request.name or ""
    try:
        task = upstream.cluster.get(_tasks(namespace, name))
        by_task = upstream.events.in_namespace(namespace)
    except ClusterError as error:
        if error.status == 404:
            raise request.kind.resource.not_found(name) from None
        raise upstream_error(error) from None
    return ObjectResult(orjson.dumps(combine(task, by_task.get(_uid(task), []))))


def list_(request: ApiRequest, deps: Deps) -> ListResult:
    """A CombinedTaskList (empty included) of one page of Tasks: 1 Task LIST + 1 Events LIST."""
    upstream = _upstream(request, deps)
    params = {key: value for key in LISTED if (value := request.param(key))}
    listed = _read(lambda: upstream.cluster.get(_tasks(request.namespace), params))
    tasks: list[dict[str, Any]] = listed.get("items") or []
    if not tasks:
        by_namespace: Mapping[str, Mapping[str, list[Any]]] = {}
    elif request.namespace is not None:
        namespace = request.namespace
        by_namespace = {namespace: _read(lambda: upstream.events.in_namespace(namespace))}
    else:
        spanned = {_namespace(task) for task in tasks}
        by_namespace = _read(lambda: upstream.events.everywhere(spanned))
    items = [
        orjson.dumps(combine(task, by_namespace.get(_namespace(task), {}).get(_uid(task), [])))
        for task in tasks
    ]
    meta = listed.get("metadata") or {}
    return ListResult(
        meta.get("resourceVersion", ""),
        items,
        meta.get("continue", ""),
        meta.get("remainingItemCount"),
    )


def watch(request: ApiRequest, deps: Deps) -> RelayResult:
    """The cluster's Task watch (parameters passed through, ``timeoutSeconds`` set to this
    watch's lifetime), joined with Events; 410 and other ERROR events pass through."""
    upstream = _upstream(request, deps)
    seconds = lifetime(request.param("timeoutSeconds"))
    # The cluster applies the selectors to its watch; this tests the tasks a watch learns of
    # through their Events.
    selects = object_selector(
        request.param("labelSelector"),
        request.param("fieldSelector"),
        request.kind.selectable_fields,
    )
    params = {key: value for key in WATCHED if (value := request.param(key))}
    params["timeoutSeconds"] = str(max(1, round(seconds)))
    tasks = _read(lambda: upstream.cluster.watch(_tasks(request.namespace), params))
    deadline = time.monotonic() + seconds
    relay = _Relay(upstream, request.namespace, tasks, selects, deadline, deps)
    return RelayResult(relay.events())


def combine(task: Mapping[str, Any], events: list[Any]) -> dict[str, Any]:
    """A CombinedTask: the Task's metadata and spec, its Events (oldest first) as status."""
    return {
        "kind": KIND,
        "apiVersion": GROUP_VERSION,
        "metadata": task.get("metadata") or {},
        "spec": task.get("spec") or {},
        "status": {"events": list(events)},
    }


def upstream_error(error: ClusterError) -> ApiError:
    """The cluster's own Status for what the caller can act on (a bad selector, 403, 404, an
    expired continue token, 410); anything else, an unreachable cluster included, is a 503
    that names the cluster call."""
    body = error.body or {}
    if error.status in _PASSED_CODES and body.get("kind") == "Status":
        return ApiError(
            error.status,
            str(body.get("reason") or ""),
            str(body.get("message") or error.message),
            body.get("details"),
        )
    return service_unavailable(f"the cluster could not be read: {error.message}")


def _upstream(request: ApiRequest, deps: Deps) -> Upstream:
    upstream = deps.upstream
    if upstream is None:
        raise service_unavailable("combinedtasks are read from a cluster, and none is configured")
    if upstream.check_access:
        request.authorize("list", TASK_GROUP, "tasks")
        request.authorize("list", "", "events")
    return upstream


def _read(call: Callable[[], T]) -> T:
    try:
        return call()
    except ClusterError as error:
        raise upstream_error(error) from None


def _tasks(namespace: str | None, name: str = "") -> str:
    path = f"{TASKS}/namespaces/{namespace}/tasks" if namespace else f"{TASKS}/tasks"
    return f"{path}/{name}" if name else path


def _events(namespace: str | None) -> str:
    return f"/api/v1/namespaces/{namespace}/events" if namespace else "/api/v1/events"


def _uid(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid", ""))


def _namespace(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


class _Relay:
    """One combinedtasks watch: a thread reading the Task watch, one following the Events,
    and the request's thread turning what they read into CombinedTask events."""

    def __init__(
        self,
        upstream: Upstream,
        namespace: str | None,
        tasks: WatchStream,
        selects: Callable[[Mapping[str, Any]], bool],
        deadline: float,
        deps: Deps,
    ) -> None:
        self._upstream = upstream
        self._namespace = namespace
        self._tasks = tasks
        self._deadline = deadline
        self._stopping = deps.stopping
        self._over = threading.Event()
        self._events: WatchStream | None = None
        self._inbox: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._known: dict[str, dict[str, Any]] = {}  # uid -> the latest Task seen
        self._selects = selects

    def events(self) -> Generator[WatchEvent, None, None]:
        threading.Thread(target=self._read_tasks, name="combined-tasks", daemon=True).start()
        threading.Thread(target=self._read_events, name="combined-events", daemon=True).start()
        try:
            while not self._stopping.is_set():
                left = self._deadline - time.monotonic()
                if left <= 0:
                    return
                try:
                    source, item = self._inbox.get(timeout=min(_TICK, left))
                except queue.Empty:
                    continue
                if source == "end":
                    return
                made = self._from_task(item) if source == "task" else self._from_event(item)
                if made is not None:
                    yield made
                    if made.type == "ERROR":
                        return
        finally:
            self._over.set()
            self._tasks.close()
            if self._events is not None:
                self._events.close()

    def _from_task(self, event: dict[str, Any]) -> WatchEvent | None:
        kind, task = str(event.get("type", "")), event.get("object") or {}
        if kind == "ERROR":
            return WatchEvent(kind, orjson.dumps(task))
        if kind == "BOOKMARK":
            bookmark = {"kind": KIND, "apiVersion": GROUP_VERSION, "metadata": task["metadata"]}
            return WatchEvent(kind, orjson.dumps(bookmark))
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return None
        uid = _uid(task)
        if kind == "DELETED":
            self._known.pop(uid, None)
        else:
            self._known[uid] = task
        return self._joined(kind, task)

    def _from_event(self, event: dict[str, Any]) -> WatchEvent | None:
        """A labelled Event was recorded, changed or removed: its task changed too."""
        recorded = event.get("object") or {}
        uid = self._upstream.events.observe(str(event.get("type")), recorded)
        if uid is None:
            return None
        task = self._known.get(uid) or self._fetch(uid, recorded)
        return None if task is None else self._joined("MODIFIED", task)

    def _fetch(self, uid: str, recorded: Mapping[str, Any]) -> dict[str, Any] | None:
        """The task an Event is about, when this watch has not seen it (a watch from a
        resourceVersion starts with no task) and it is one the watch selects."""
        involved = recorded.get("involvedObject") or {}
        namespace = involved.get("namespace") or _namespace(recorded)
        if not involved.get("name") or not namespace:
            return None
        try:
            task = self._upstream.cluster.get(_tasks(namespace, involved["name"]))
        except ClusterError:
            return None
        if _uid(task) != uid or not self._selects(task):
            return None
        self._known[uid] = task
        return task

    def _joined(self, kind: str, task: dict[str, Any]) -> WatchEvent:
        try:
            by_task = self._upstream.events.in_namespace(_namespace(task))
        except ClusterError as error:
            status = upstream_error(error).status()
            return WatchEvent("ERROR", orjson.dumps(status))
        return WatchEvent(kind, orjson.dumps(combine(task, by_task.get(_uid(task), []))))

    def _read_tasks(self) -> None:
        try:
            for event in self._tasks:
                self._inbox.put(("task", event))
        except ClusterError as error:
            if not self._over.is_set():
                log.info("the Task watch failed: %s", error)
        finally:
            self._inbox.put(("end", {}))

    def _read_events(self) -> None:
        """Follow the labelled Events from the revision the cache listed them at, so none is
        missed; resume after a failure from the last revision seen, or list again after 410."""
        events = self._upstream.events
        revision = ""
        while not self._over.is_set():
            try:
                revision = revision or events.revision(self._namespace)
                left = max(1, round(self._deadline - time.monotonic()))
                self._events = self._upstream.cluster.watch(
                    _events(self._namespace),
                    {
                        "labelSelector": TASK_UID,
                        "resourceVersion": revision,
                        "allowWatchBookmarks": "true",
                        "timeoutSeconds": str(left),
                    },
                )
                for event in self._events:
                    if event.get("type") == "ERROR":  # too old: the cache lists again
                        events.forget(self._namespace)
                        revision = ""
                        break
                    metadata = (event.get("object") or {}).get("metadata") or {}
                    revision = str(metadata.get("resourceVersion") or revision)
                    if event.get("type") != "BOOKMARK":
                        self._inbox.put(("event", event))
            except ClusterError as error:
                if self._over.is_set():
                    return
                log.info("the Events watch failed: %s", error)
                self._over.wait(_RETRY)
