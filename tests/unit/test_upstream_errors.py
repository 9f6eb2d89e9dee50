"""What a combinedtasks client sees when the cluster answers with an error or not at all."""

from __future__ import annotations

import pytest

from handlers.combinedtasks.join import upstream_error
from k8s.client import ClusterError


def status(code: int, reason: str, message: str) -> dict[str, object]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "code": code,
        "reason": reason,
        "message": message,
    }


@pytest.mark.parametrize(
    ("code", "reason"),
    [(400, "BadRequest"), (403, "Forbidden"), (404, "NotFound"), (410, "Expired")],
)
def test_what_the_caller_can_act_on_passes_through_with_the_clusters_words(
    code: int, reason: str
) -> None:
    body = status(code, reason, f"the cluster says {code}")
    error = upstream_error(ClusterError(f"GET /x: {code}", code, body))
    assert (error.code, error.reason, error.message) == (code, reason, f"the cluster says {code}")


@pytest.mark.parametrize(
    "error",
    [
        ClusterError("GET /apis/example.example.com/v1/tasks: connection refused"),
        ClusterError("GET /apis/example.example.com/v1/tasks: 401 Unauthorized", 401),
        ClusterError("GET /apis/example.example.com/v1/tasks: 500 boom", 500),
        ClusterError("GET /apis/example.example.com/v1/tasks: 403 <html>", 403, None),
    ],
)
def test_anything_else_is_503_naming_the_cluster_call(error: ClusterError) -> None:
    refused = upstream_error(error)
    assert (refused.code, refused.reason) == (503, "ServiceUnavailable")
    assert refused.message == f"the cluster could not be read: {error.message}"
    assert "GET /apis/example.example.com/v1/tasks" in refused.message
