"""NamespaceLifecycle, as k8s.io/apiserver's plugin decides: nothing is written into a
namespace that does not exist, and nothing is created in one being deleted, so the
namespace controller can finish emptying it."""

from __future__ import annotations

from typing import Any

from handlers.api.admission import CREATE, DELETE, Attributes
from handlers.api.errors import ApiError, internal_error
from k8s import paths
from k8s.client import Cluster, ClusterError
from k8s.informer import Informer

TERMINATING = "Terminating"


class NamespaceLifecycle:
    """Reads the namespace from the cluster's namespaces as last watched; one not seen yet
    (created a moment ago) is looked up live before a write is refused for it."""

    def __init__(self, namespaces: Informer, cluster: Cluster) -> None:
        self._namespaces = namespaces
        self._cluster = cluster

    def validate(self, attributes: Attributes) -> tuple[str, ...]:
        """Deletes and cluster-scoped objects always pass, as in kube."""
        name = attributes.namespace
        if not name or attributes.operation == DELETE:
            return ()
        if not self._namespaces.synced.is_set():
            raise attributes.forbidden("not yet ready to handle request")
        namespace = self._namespaces.get("", name) or self._live(name)
        phase = (namespace.get("status") or {}).get("phase")
        if attributes.operation == CREATE and phase == TERMINATING:
            error = attributes.forbidden(
                f"unable to create new content in namespace {name} because it is being terminated"
            )
            error.details["causes"] = [
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {name} is being terminated",
                    "field": "metadata.namespace",
                }
            ]
            raise error
        return ()

    def _live(self, name: str) -> dict[str, Any]:
        """The namespace read from the cluster; kube's 404 when it has none."""
        try:
            return self._cluster.get(paths.namespaces(name))
        except ClusterError as error:
            if error.status == 404:
                raise ApiError(
                    404,
                    "NotFound",
                    f'namespaces "{name}" not found',
                    {"name": name, "kind": "namespaces"},
                ) from None
            raise internal_error(error.message) from None
