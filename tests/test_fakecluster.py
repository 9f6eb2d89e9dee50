"""The fake kube-apiserver, driven through the real client over TLS (contract A2, A5, A7)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from k8s import reviews
from k8s.client import Cluster, ClusterError
from tests.fakecluster import Call, FakeCluster, Reply


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    with FakeCluster() as running:
        yield running


@pytest.fixture
def cluster(
    fake: FakeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    loaded = Cluster.from_environment(str(fake.kubeconfig(tmp_path)))
    assert loaded is not None
    yield loaded
    loaded.close()


def test_a2_configmap(fake: FakeCluster, cluster: Cluster) -> None:
    fake.configmap = {"requestheader-allowed-names": '["front-proxy-client"]'}
    assert reviews.authentication_configmap(cluster) == fake.configmap
    fake.configmap = None
    assert reviews.authentication_configmap(cluster) == {}
    with pytest.raises(ClusterError) as caught:
        cluster.get("/api/v1/namespaces/default/configmaps/other")
    assert caught.value.status == 404
    assert caught.value.body is not None
    assert caught.value.body["message"] == 'configmaps "other" not found'


def test_a5_token_review(fake: FakeCluster, cluster: Cluster) -> None:
    alice = {"username": "alice", "uid": "1", "groups": ["devs"], "extra": {"k": ["v"]}}
    fake.tokens["alice-token"] = alice
    status = reviews.token_review(cluster, "alice-token", ["api"])
    assert status == {"authenticated": True, "user": alice, "audiences": ["api"]}
    unknown = reviews.token_review(cluster, "nobody")
    assert not unknown.get("authenticated")
    assert unknown["user"] == {}
    assert [r["spec"]["token"] for r in fake.reviews("tokenreviews")] == ["alice-token", "nobody"]


def test_a7_subject_access_review(fake: FakeCluster, cluster: Cluster) -> None:
    spec: dict[str, Any] = {
        "user": "alice",
        "groups": ["system:authenticated"],
        "resourceAttributes": {"verb": "get", "resource": "customtasks", "namespace": "n"},
    }
    assert reviews.subject_access_review(cluster, spec) == {"allowed": False}
    fake.decide = lambda s: (s["user"] == "alice", "RBAC: allowed by test")
    assert reviews.subject_access_review(cluster, spec) == {
        "allowed": True,
        "reason": "RBAC: allowed by test",
    }
    assert (
        fake.reviews()
        == [{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}]
        * 2
    )


def test_a7_subject_access_review_is_validated_like_kube(cluster: Cluster) -> None:
    with pytest.raises(ClusterError) as caught:
        reviews.subject_access_review(cluster, {"resourceAttributes": {"verb": "get"}})
    assert caught.value.status == 422
    assert "at least one of user or group must be specified" in caught.value.message


def test_requests_are_recorded(fake: FakeCluster, cluster: Cluster) -> None:
    cluster.get(reviews.AUTHENTICATION_CONFIGMAP, {"resourceVersion": "0"})
    [recorded] = fake.requests
    assert recorded.method == "GET"
    assert recorded.path == reviews.AUTHENTICATION_CONFIGMAP
    assert recorded.query == {"resourceVersion": "0"}
    assert recorded.headers["authorization"] == f"Bearer {fake.token}"
    assert recorded.body is None


def test_wrong_token_is_unauthorized(fake: FakeCluster) -> None:
    intruder = Cluster(fake.url, ca_file=fake.ca_file, authorization=lambda: "Bearer guess")
    with pytest.raises(ClusterError) as caught:
        reviews.authentication_configmap(intruder)
    assert caught.value.status == 401
    assert caught.value.body is not None
    assert caught.value.body["reason"] == "Unauthorized"
    intruder.close()


def test_an_unknown_ca_is_refused(fake: FakeCluster) -> None:
    """The client verifies the fake's certificate against the kubeconfig's CA only."""
    stranger = Cluster(fake.url, authorization=lambda: f"Bearer {fake.token}")
    with pytest.raises(ClusterError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        stranger.get(reviews.AUTHENTICATION_CONFIGMAP)
    assert caught.value.status is None
    stranger.close()


@pytest.mark.parametrize("code", [403, 500, 503])
def test_failure(fake: FakeCluster, cluster: Cluster, code: int) -> None:
    fake.failure = code
    with pytest.raises(ClusterError) as caught:
        reviews.subject_access_review(cluster, {"user": "a", "nonResourceAttributes": {}})
    assert caught.value.status == code
    assert caught.value.body is not None
    assert caught.value.body["kind"] == "Status"
    assert caught.value.body["code"] == code
    with pytest.raises(ClusterError):
        reviews.token_review(cluster, "t")
    assert reviews.authentication_configmap(cluster) == {}  # failure is for reviews only
    fake.failure = None
    assert reviews.token_review(cluster, "t")["user"] == {}


def test_delay_and_timeout(fake: FakeCluster, cluster: Cluster) -> None:
    fake.delay = 0.5
    started = time.monotonic()
    with pytest.raises(ClusterError, match="timed out") as caught:
        reviews.token_review(cluster, "t", timeout=0.1)
    assert caught.value.status is None
    assert time.monotonic() - started < 0.45
    assert reviews.token_review(cluster, "t", timeout=5)["user"] == {}


def test_one_client_many_threads(fake: FakeCluster, cluster: Cluster) -> None:
    """The pooled Session serves concurrent gthread-style callers, each with its own answer."""
    fake.delay = 0.2
    fake.decide = lambda spec: (spec["user"].endswith("0"), "")
    results: dict[str, bool] = {}

    def ask(user: str) -> None:
        status = reviews.subject_access_review(
            cluster, {"user": user, "nonResourceAttributes": {"path": "/", "verb": "get"}}
        )
        results[user] = bool(status.get("allowed"))

    users = [f"user-{i}" for i in range(20)]
    threads = [threading.Thread(target=ask, args=(user,)) for user in users]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 0.2 * 20 / 4
    assert results == {user: user.endswith("0") for user in users}
    assert len(fake.reviews()) == 20


def test_routes_can_be_added(fake: FakeCluster, cluster: Cluster) -> None:
    def version(call: Call) -> Reply:
        return Reply(200, {"major": "1", "minor": "33", "query": call.request.query})

    fake.route("GET", "/version", version)
    assert cluster.get("/version", {"a": "b"}) == {"major": "1", "minor": "33", "query": {"a": "b"}}
    with pytest.raises(ClusterError) as caught:
        cluster.post("/version", {})
    assert caught.value.status == 405
