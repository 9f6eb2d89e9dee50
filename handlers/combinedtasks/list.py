"""List CombinedTasks: one page of Tasks with their Events, 1 Task LIST + 1 Events LIST.

The caller's paging, selectors and resourceVersion pass through to the cluster (and no limit
the caller did not ask for); Events come from the per-process cache, one LIST per namespace
per TTL window however many tasks are shown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from handlers.api.contract import ApiRequest, Deps, ListResult
from handlers.api.params import list_options
from handlers.combinedtasks.join import combine, namespace_of, read, uid_of, upstream
from k8s import paths

PASSED = ("labelSelector", "fieldSelector", "limit", "continue", "resourceVersion")


def handle(request: ApiRequest, deps: Deps) -> ListResult:
    """A CombinedTaskList, empty included."""
    list_options(request.query, watch=False)  # the cluster would refuse the same, less clearly
    cluster = upstream(request, deps)
    params = {key: value for key in PASSED if (value := request.param(key))}
    listed = read(lambda: cluster.cluster.get(paths.tasks(request.namespace), params))
    tasks: list[dict[str, Any]] = listed.get("items") or []
    if not tasks:
        by_namespace: Mapping[str, Mapping[str, list[Any]]] = {}
    elif request.namespace is not None:
        namespace = request.namespace
        by_namespace = {namespace: read(lambda: cluster.events.in_namespace(namespace))}
    else:
        spanned = {namespace_of(task) for task in tasks}
        by_namespace = read(lambda: cluster.events.everywhere(spanned))
    items = [
        orjson.dumps(combine(task, by_namespace.get(namespace_of(task), {}).get(uid_of(task), [])))
        for task in tasks
    ]
    meta = listed.get("metadata") or {}
    return ListResult(
        meta.get("resourceVersion", ""),
        items,
        meta.get("continue", ""),
        meta.get("remainingItemCount"),
    )
