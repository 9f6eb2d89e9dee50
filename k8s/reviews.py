"""The cluster calls behind delegated authentication and authorization (contract A2, A5, A7)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from k8s.client import Cluster, ClusterError

AUTHENTICATION_CONFIGMAP = (
    "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"
)
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def authentication_configmap(cluster: Cluster) -> dict[str, str]:
    """The data of kube-system/extension-apiserver-authentication (A2); empty if there is none.

    A missing ConfigMap (404) means a cluster not set up for aggregation: like the Go library's
    request-header controller, treat it as no configuration rather than as an error. Any other
    failure (403 when the reader RoleBinding is missing, 5xx, unreachable) raises ClusterError.
    """
    try:
        configmap = cluster.get(AUTHENTICATION_CONFIGMAP)
    except ClusterError as exc:
        if exc.status == 404:
            return {}
        raise
    data = configmap.get("data") or {}
    return {str(key): str(value) for key, value in data.items()}


def token_review(
    cluster: Cluster, token: str, audiences: Sequence[str] = (), *, timeout: float | None = None
) -> dict[str, Any]:
    """POST a TokenReview (A5) and return its ``status``.

    kube omits ``authenticated`` when false, so read it with ``.get``.
    """
    spec: dict[str, Any] = {"token": token}
    if audiences:
        spec["audiences"] = list(audiences)
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
    return _status(cluster.post(TOKEN_REVIEWS, review, timeout=timeout))


def subject_access_review(
    cluster: Cluster, spec: Mapping[str, Any], *, timeout: float | None = None
) -> dict[str, Any]:
    """POST a SubjectAccessReview with ``spec`` (A7) and return its ``status``.

    kube omits ``allowed`` and ``denied`` when false, so read them with ``.get``.
    """
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": dict(spec),
    }
    return _status(cluster.post(SUBJECT_ACCESS_REVIEWS, review, timeout=timeout))


def _status(review: dict[str, Any]) -> dict[str, Any]:
    status = review.get("status")
    return status if isinstance(status, dict) else {}
