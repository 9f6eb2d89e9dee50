"""The cluster this process talks to, made once from the settings.

With a kubeconfig setting or in a pod, one connection serves both the server's own calls
(TokenReview, SubjectAccessReview, the authentication ConfigMap) and what handlers read
(:class:`k8s.upstream.Upstream`). In dev, with neither, handlers may still read the cluster
of the developer's ``KUBECONFIG`` while authentication and authorization stay local.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from k8s.client import Cluster, ClusterError
from k8s.upstream import Upstream
from proxy.settings import Settings

log = logging.getLogger("apiserver")


@dataclass(frozen=True, slots=True)
class Connections:
    """``reviews``: the cluster that reviews requests (None in dev); ``upstream``: the cluster
    handlers read, with this process's caches of it (None when there is none)."""

    reviews: Cluster | None
    upstream: Upstream | None


def connect(settings: Settings) -> Connections:
    """The connections the settings ask for (no request is made yet)."""
    reviews = None
    if settings.kubeconfig or settings.in_cluster:
        reviews = Cluster.from_environment(
            settings.kubeconfig or None,
            timeout=settings.review_timeout_seconds,
            service_account=settings.service_account_dir,
        )
    read = reviews or _user_cluster(settings)
    upstream = None
    if read is not None:
        upstream = Upstream.connect(
            read,
            events_ttl=settings.events_cache_seconds,
            check_access=settings.combined_access_check,
        )
    return Connections(reviews, upstream)


def _user_cluster(settings: Settings) -> Cluster | None:
    """In dev, the cluster of ``KUBECONFIG`` (if set and usable), for handlers only."""
    if not settings.user_kubeconfig:
        return None
    try:
        return Cluster.from_environment(settings.user_kubeconfig)
    except ClusterError as error:
        log.warning("combinedtasks have no cluster: %s", error)
        return None
