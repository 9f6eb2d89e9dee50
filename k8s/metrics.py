"""What the server's calls to the cluster and its events cache do, as Prometheus metrics of
our own (``task_search_*``); kube's request metrics are the proxy's (:mod:`proxy.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CLUSTER_REQUESTS = Counter(
    "task_search_cluster_requests_total",
    "Requests to the cluster's API server, by verb and HTTP code (<error>: no answer).",
    ("verb", "code"),
)
CLUSTER_DURATION = Histogram(
    "task_search_cluster_request_duration_seconds",
    "Latency of requests to the cluster's API server until their answer's headers, by verb.",
    ("verb",),
    buckets=(0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),  # client-go's rest_client
)
EVENTS_CACHE = Counter(
    "task_search_events_cache_lookups_total",
    "Lookups of the Events of tasks (combinedtasks), by result: hit, or miss (a LIST).",
    ("result",),
)
EVENTS_HIT, EVENTS_MISS = EVENTS_CACHE.labels("hit"), EVENTS_CACHE.labels("miss")
INDEXED = Counter(
    "task_search_search_index_updates_total",
    "Changes of the cluster's Tasks written to the search index, by how: event (one Task "
    "added, modified or deleted) or relist (the whole index of Tasks replaced).",
    ("how",),
)
