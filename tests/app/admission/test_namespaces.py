"""NamespaceLifecycle in the admission chain of every write (R12): nothing is written into a
namespace the cluster does not have, nothing is created in one being deleted, and the
namespace controller empties a deleted namespace with the calls it makes. The namespaces are
the fake cluster's, read through one list+watch per process, and looked up live on a miss.

kube's words (k8s.io/apiserver, plugin/namespace/lifecycle): "unable to create new content
in namespace %s because it is being terminated", with the cause ``NamespaceTerminating``
"namespace %s is being terminated" on ``metadata.namespace``; "not yet ready to handle
request" until the namespaces are listed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from falcon.testing import TestClient

from tests.app.test_crud import GV, post, status_of, task
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import NAMESPACES
from tests.support.clusterapp import cluster_app, eventually

METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


def tasks_in(namespace: str) -> str:
    return f"{GV}/namespaces/{namespace}/customtasks"


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    with FakeCluster() as cluster:
        for name in ("team", "going"):
            cluster.objects.put(NAMESPACES, {"metadata": {"name": name}})
        yield cluster


def terminate(fake: FakeCluster, name: str) -> None:
    """Delete the namespace in the cluster: it stays, Terminating, for its finalizer."""
    fake.objects.delete(NAMESPACES, "", name)


def test_a_create_in_a_namespace_the_cluster_lacks_is_404_after_a_live_look(
    client: TestClient, fake: FakeCluster
) -> None:
    answer = post(client, tasks_in("nowhere"), task("t"))
    assert status_of(answer) == (404, "NotFound")
    assert answer.json["message"] == 'namespaces "nowhere" not found'
    assert answer.json["details"] == {"name": "nowhere", "kind": "namespaces"}
    assert fake.count("GET", "/api/v1/namespaces/nowhere") == 1
    assert client.simulate_get(tasks_in("nowhere")).json["items"] == []


def test_a_namespace_created_a_moment_ago_takes_writes_at_once(
    client: TestClient, fake: FakeCluster
) -> None:
    fake.objects.put(NAMESPACES, {"metadata": {"name": "fresh"}})
    assert post(client, tasks_in("fresh"), task("t")).status_code == 201


def test_the_cached_namespaces_answer_without_a_cluster_call(
    client: TestClient, fake: FakeCluster
) -> None:
    fake.requests.clear()
    assert post(client, tasks_in("team"), task("t")).status_code == 201
    assert fake.count("GET", "/api/v1/namespaces/team") == 0


def test_nothing_is_created_in_a_terminating_namespace_with_kubes_words(
    client: TestClient, fake: FakeCluster
) -> None:
    assert post(client, tasks_in("going"), task("kept")).status_code == 201
    terminate(fake, "going")
    eventually(lambda: post(client, tasks_in("going"), task("late")).status_code == 403, "refused")
    answer = post(client, tasks_in("going"), task("late"))
    assert answer.json["message"] == (
        'customtasks.search.task.example.example.com "late" is forbidden: unable to create new '
        "content in namespace going because it is being terminated"
    )
    assert answer.json["details"] == {
        "name": "late",
        "group": "search.task.example.example.com",
        "kind": "customtasks",
        "causes": [
            {
                "reason": "NamespaceTerminating",
                "message": "namespace going is being terminated",
                "field": "metadata.namespace",
            }
        ],
    }
    by_generate = post(client, tasks_in("going"), task(generateName="gen-"))
    assert by_generate.json["details"]["name"] == "gen-"  # admission runs before the name is made
    dry = post(client, tasks_in("going"), task("dry"), params={"dryRun": "All"})
    assert status_of(dry) == (403, "Forbidden")
    # what is already there may still change and go: the namespace controller needs it
    patched = client.simulate_patch(
        f"{tasks_in('going')}/kept",
        body=b'{"spec":{"priority":4}}',
        content_type="application/merge-patch+json",
    )
    assert patched.status_code == 200, patched.text
    assert client.simulate_delete(f"{tasks_in('going')}/kept").status_code == 200


def test_writes_in_a_namespace_that_is_gone_are_404_but_deletes_pass(
    client: TestClient, fake: FakeCluster
) -> None:
    assert post(client, tasks_in("going"), task("left")).status_code == 201
    terminate(fake, "going")
    fake.objects.finalize_namespace("going")

    def refused() -> bool:
        answer = client.simulate_patch(
            f"{tasks_in('going')}/left",
            body=b'{"spec":{"priority":4}}',
            content_type="application/merge-patch+json",
        )
        return answer.status_code == 404 and answer.json["message"] == (
            'namespaces "going" not found'
        )

    eventually(refused, "an update refused")
    assert client.simulate_delete(f"{tasks_in('going')}/left").status_code == 200


def test_cluster_scoped_kinds_are_not_namespace_checked(client: TestClient) -> None:
    body = {**task("c"), "kind": "ClusterTask"}
    body["metadata"] = {"name": "c"}
    assert post(client, f"{GV}/clustertasks", body).status_code == 201


def test_until_the_namespaces_are_listed_writes_are_refused_and_not_ready(
    fake: FakeCluster, tmp_path: Path
) -> None:
    fake.fail["namespaces"] = 500
    with cluster_app(fake, tmp_path, ready=False) as client:
        ready = client.simulate_get("/readyz")
        assert ready.status_code == 500
        assert "[-]admission failed: reason withheld" in ready.text.splitlines()
        why = client.simulate_get("/readyz/admission")
        assert why.status_code == 500
        assert why.text.startswith(
            "internal server error: admission has not read /api/v1/namespaces"
        )
        answer = post(client, tasks_in("team"), task("early"))
        assert status_of(answer) == (403, "Forbidden")
        assert answer.json["message"] == (
            'customtasks.search.task.example.example.com "early" is forbidden: not yet ready to '
            "handle request"
        )
        del fake.fail["namespaces"]
        eventually(lambda: client.simulate_get("/readyz").status_code == 200, "ready")
        assert post(client, tasks_in("team"), task("early")).status_code == 201


def test_the_namespace_controller_empties_a_deleted_namespace(
    client: TestClient, fake: FakeCluster
) -> None:
    """Its sequence (kube's namespaced_resources_deleter): discovery for what is deletable,
    deletecollection in the namespace, then a metadata-only list for what remains; objects
    with finalizers stay until their owners remove them, and the list comes back empty."""
    for name in ("a", "b"):
        assert post(client, tasks_in("going"), task(name)).status_code == 201
    held = task("held", finalizers=["example.com/hold"])
    assert post(client, tasks_in("going"), held).status_code == 201
    terminate(fake, "going")

    discovery = client.simulate_get(GV).json
    (resource,) = [r for r in discovery["resources"] if r["name"] == "customtasks"]
    assert {"list", "deletecollection"} <= set(resource["verbs"])

    options = orjson.dumps({"kind": "DeleteOptions", "propagationPolicy": "Background"})
    emptied = client.simulate_delete(
        tasks_in("going"), body=options, content_type="application/json"
    )
    assert emptied.status_code == 200, emptied.text
    left = client.simulate_get(tasks_in("going"), headers={"Accept": METADATA_LIST}).json
    assert [item["metadata"]["name"] for item in left["items"]] == ["held"]
    assert left["items"][0]["metadata"]["deletionTimestamp"]

    released = client.simulate_patch(
        f"{tasks_in('going')}/held",
        body=b'{"metadata":{"finalizers":null}}',
        content_type="application/merge-patch+json",
    )
    assert released.status_code == 200, released.text
    after = client.simulate_get(tasks_in("going"), headers={"Accept": METADATA_LIST}).json
    assert after["items"] == []
