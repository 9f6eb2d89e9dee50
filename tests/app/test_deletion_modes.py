"""R11 garbage collection's deletion modes, as kube's registry serves them to the cluster's
garbage collector: a Foreground delete leaves the object with ``deletionTimestamp`` and the
``foregroundDeletion`` finalizer, an Orphan delete with ``orphan``; the collector reads them
with metadata-only lists and removes its finalizer with a merge patch carrying the
resourceVersion, which completes the deletion."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from falcon.testing import Result, TestClient

from tests.app.test_crud import NS, post, status_of, task

METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"


def delete(client: TestClient, name: str, options: dict[str, Any]) -> Result:
    body = orjson.dumps({"kind": "DeleteOptions", "apiVersion": "v1", **options})
    return client.simulate_delete(f"{NS}/{name}", body=body, content_type="application/json")


def finalizers_after(client: TestClient, name: str, options: dict[str, Any]) -> list[str]:
    answer = delete(client, name, options)
    assert answer.status_code == 200, answer.text
    meta = answer.json["metadata"]
    assert meta["deletionTimestamp"] and meta["deletionGracePeriodSeconds"] == 0
    stored = client.simulate_get(f"{NS}/{name}").json["metadata"]
    assert stored["finalizers"] == meta["finalizers"]
    finalizers: list[str] = meta["finalizers"]
    return finalizers


@pytest.mark.parametrize(
    ("options", "finalizer"),
    [
        ({"propagationPolicy": "Foreground"}, "foregroundDeletion"),
        ({"propagationPolicy": "Orphan"}, "orphan"),
        ({"orphanDependents": True}, "orphan"),
    ],
)
def test_foreground_and_orphan_deletes_leave_the_collectors_finalizer(
    client: TestClient, options: dict[str, Any], finalizer: str
) -> None:
    post(client, NS, task("gc"))
    assert finalizers_after(client, "gc", options) == [finalizer]
    assert client.simulate_get(f"{NS}/gc").json["metadata"]["generation"] == 2


def test_a_background_delete_removes_at_once_and_keeps_other_finalizers(
    client: TestClient,
) -> None:
    post(client, NS, task("bg"))
    assert delete(client, "bg", {"propagationPolicy": "Background"}).status_code == 200
    assert status_of(client.simulate_get(f"{NS}/bg")) == (404, "NotFound")
    post(client, NS, task("mine", finalizers=["example.com/mine"]))
    assert finalizers_after(client, "mine", {"propagationPolicy": "Foreground"}) == [
        "example.com/mine",
        "foregroundDeletion",
    ]


def test_a_later_delete_changes_the_mode_of_an_object_being_deleted(client: TestClient) -> None:
    post(client, NS, task("switch", finalizers=["example.com/mine"]))
    assert finalizers_after(client, "switch", {"propagationPolicy": "Orphan"}) == [
        "example.com/mine",
        "orphan",
    ]
    assert finalizers_after(client, "switch", {"propagationPolicy": "Background"}) == [
        "example.com/mine"
    ]
    # with nothing asked, the object's own finalizer decides: it stays as it is
    post(client, NS, task("kept"))
    assert finalizers_after(client, "kept", {"propagationPolicy": "Orphan"}) == ["orphan"]
    assert finalizers_after(client, "kept", {}) == ["orphan"]


def test_the_collector_reads_metadata_and_its_patch_completes_the_deletion(
    client: TestClient,
) -> None:
    post(client, NS, task("owner"))
    delete(client, "owner", {"propagationPolicy": "Foreground"})
    listed = client.simulate_get(NS, headers={"Accept": METADATA_LIST}).json
    assert listed["kind"] == "PartialObjectMetadataList"
    (item,) = [i for i in listed["items"] if i["metadata"]["name"] == "owner"]
    assert item["metadata"]["finalizers"] == ["foregroundDeletion"]
    got = client.simulate_get(f"{NS}/owner", headers={"Accept": METADATA}).json
    assert got["kind"] == "PartialObjectMetadata" and got["metadata"]["deletionTimestamp"]
    # the garbage collector's removeFinalizer: a merge patch of resourceVersion and finalizers
    patch = {"metadata": {"resourceVersion": got["metadata"]["resourceVersion"], "finalizers": []}}
    r = client.simulate_patch(
        f"{NS}/owner",
        body=orjson.dumps(patch),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert status_of(client.simulate_get(f"{NS}/owner")) == (404, "NotFound")


def test_a_dry_run_foreground_delete_changes_nothing(client: TestClient) -> None:
    before = post(client, NS, task("dry")).json
    answer = delete(client, "dry", {"propagationPolicy": "Foreground", "dryRun": ["All"]})
    assert answer.json["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert client.simulate_get(f"{NS}/dry").json == before


def test_orphan_and_foreground_finalizers_together_are_invalid(client: TestClient) -> None:
    r = post(client, NS, task("both", finalizers=["orphan", "foregroundDeletion"]))
    assert status_of(r) == (422, "Invalid")
    assert r.json["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: []string{"orphan", "foregroundDeletion"}: finalizer '
            "orphan and foregroundDeletion cannot be both set",
            "field": "metadata.finalizers",
        }
    ]


def test_orphan_dependents_false_on_an_object_that_stays_is_202(client: TestClient) -> None:
    """kube's delete handler: 202 Accepted when ``orphanDependents: false`` and the object is
    not deleted at once (finalizers remain); 200 otherwise."""
    post(client, NS, task("held", finalizers=["example.com/mine"]))
    held = delete(client, "held", {"orphanDependents": False})
    assert held.status_code == 202
    assert held.json["metadata"]["finalizers"] == ["example.com/mine"]
    post(client, NS, task("free"))
    assert delete(client, "free", {"orphanDependents": False}).status_code == 200
    assert status_of(client.simulate_get(f"{NS}/free")) == (404, "NotFound")
