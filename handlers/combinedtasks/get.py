"""Get one CombinedTask (not the one-item list the tutorial returns)."""

from __future__ import annotations

import orjson

from handlers.api.contract import ApiRequest, Deps, ObjectResult
from handlers.combinedtasks.join import combine, uid_of, upstream, upstream_error
from k8s import paths
from k8s.client import ClusterError


def handle(request: ApiRequest, deps: Deps) -> ObjectResult:
    """The Task with its Events; 404 in our resource's words when the Task is not there."""
    cluster = upstream(request, deps)
    namespace, name = request.namespace or "", request.name or ""
    try:
        task = cluster.cluster.get(paths.tasks(namespace, name))
        by_task = cluster.events.in_namespace(namespace)
    except ClusterError as error:
        if error.status == 404:
            raise request.kind.resource.not_found(name) from None
        raise upstream_error(error) from None
    return ObjectResult(orjson.dumps(combine(task, by_task.get(uid_of(task), []))))
