"""Watch CombinedTasks: the cluster's Task watch, each event joined with the task's Events,
relayed by the request's thread (see :mod:`handlers.combinedtasks.relay`)."""

from __future__ import annotations

import time

from handlers.api.contract import ApiRequest, Deps, RelayResult
from handlers.api.params import list_options
from handlers.api.selectors import object_selector
from handlers.api.watch import lifetime
from handlers.combinedtasks.join import read, upstream
from handlers.combinedtasks.relay import Relay
from k8s import paths

PASSED = (
    "labelSelector",
    "fieldSelector",
    "resourceVersion",
    "resourceVersionMatch",
    "allowWatchBookmarks",
    "sendInitialEvents",
)


def handle(request: ApiRequest, deps: Deps) -> RelayResult:
    """Parameters pass through, ``timeoutSeconds`` set to this watch's lifetime; 410 and other
    ERROR events pass through."""
    options = list_options(request.query, watch=True)
    cluster = upstream(request, deps)
    seconds = lifetime(options.timeout_seconds)
    # The cluster applies the selectors to its watch; this tests the tasks a watch learns of
    # through their Events.
    selects = object_selector(
        options.label_selector,
        options.field_selector,
        request.kind.selectable_fields,
    )
    params = {key: value for key in PASSED if (value := request.param(key))}
    params["timeoutSeconds"] = str(max(1, round(seconds)))
    tasks = read(lambda: cluster.cluster.watch(paths.tasks(request.namespace), params))
    deadline = time.monotonic() + seconds
    relay = Relay(cluster, request.namespace, tasks, selects, deadline, deps.stopping)
    return RelayResult(relay.events())
