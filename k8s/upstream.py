"""The cluster as request handlers read it: the client, and the caches of cluster objects that
this process keeps (today the Events of tasks).

The proxy builds one per process when a cluster is configured and hands it to every handler;
handlers keep no state, so the caches live here, one per process, as kube's informers do.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8s.client import Cluster
from k8s.events import TaskEvents


@dataclass(frozen=True, slots=True)
class Upstream:
    """The cluster, its per-process caches, and whether a read made for a caller first checks
    that the caller could make it itself (the server reads with its own identity)."""

    cluster: Cluster
    events: TaskEvents
    check_access: bool = True

    @classmethod
    def connect(cls, cluster: Cluster, *, events_ttl: float, check_access: bool) -> Upstream:
        """The upstream of ``cluster``, with empty caches."""
        return cls(cluster, TaskEvents(cluster, ttl=events_ttl), check_access)
