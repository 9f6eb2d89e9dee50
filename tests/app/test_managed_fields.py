"""R10 managedFields and server-side apply through the whole app in-process: managers named
as kube names them, apply media types, the status subresource, dry-run, managers written by
clients, and the list types the OpenAPI publishes for them."""

from __future__ import annotations

from typing import Any

import orjson
from falcon.testing import Result, TestClient

from tests.app.test_crud import NS, post, status_of, task

APPLY = "application/apply-patch+yaml"
GV = "search.task.example.example.com/v1"


def send(client: TestClient, path: str, body: Any, media_type: str, **query: str) -> Result:
    return client.simulate_patch(
        path, body=orjson.dumps(body), headers={"Content-Type": media_type}, params=query
    )


def managers(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (e["manager"], e["operation"], e.get("subresource", ""))
        for e in obj["metadata"].get("managedFields", [])
    ]


def test_a_writer_without_field_manager_is_named_by_its_user_agent(client: TestClient) -> None:
    r = post(client, NS, task("ua"), headers={"User-Agent": "my-tool/1.2.3 (linux/amd64)"})
    assert managers(r.json) == [("my-tool", "Update", "")]


def test_field_manager_over_128_bytes_is_refused_on_every_write(client: TestClient) -> None:
    r = post(client, NS, task("long"), params={"fieldManager": "m" * 129})
    assert status_of(r) == (422, "Invalid")
    assert r.json["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldManager: Too long: may not be more '
        "than 128 bytes"
    )


def test_apply_without_field_manager_is_refused(client: TestClient) -> None:
    r = send(client, f"{NS}/x", task("x"), APPLY)
    assert status_of(r) == (422, "Invalid")
    assert r.json["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
        "for apply patch"
    )


def test_apply_json_is_taken_and_cbor_is_415(client: TestClient) -> None:
    r = send(client, f"{NS}/j", task("j"), "application/apply-patch+json", fieldManager="a")
    assert r.status_code == 201, r.text
    assert managers(r.json) == [("a", "Apply", "")]
    cbor = client.simulate_patch(
        f"{NS}/j",
        body=b"\xa0",
        headers={"Content-Type": "application/apply-patch+cbor"},
        params={"fieldManager": "a"},
    )
    assert status_of(cbor) == (415, "UnsupportedMediaType")


def test_apply_of_another_version_is_refused_as_kube_refuses_it(client: TestClient) -> None:
    body = {**task("v"), "apiVersion": "search.task.example.example.com/v2"}
    r = send(client, f"{NS}/v", body, APPLY, fieldManager="a")
    assert status_of(r) == (400, "BadRequest")
    assert r.json["message"] == (
        "Incorrect version specified in apply patch. Specified patch version: "
        f"search.task.example.example.com/v2, expected: {GV}"
    )


def test_apply_to_the_status_subresource_owns_only_status(client: TestClient) -> None:
    send(client, f"{NS}/st", task("st"), APPLY, fieldManager="author")
    config = {**task("st"), "status": {"phase": "Running"}}
    config["spec"] = {**config["spec"], "priority": 9}  # not the status subresource's to set
    r = send(client, f"{NS}/st/status", config, APPLY, fieldManager="controller")
    assert r.status_code == 200, r.text
    assert r.json["status"] == {"phase": "Running"}
    assert r.json["spec"]["priority"] == 3
    entries = {e["manager"]: e for e in r.json["metadata"]["managedFields"]}
    assert entries["controller"]["subresource"] == "status"
    assert entries["controller"]["operation"] == "Apply"
    assert entries["controller"]["fieldsV1"] == {"f:status": {"f:phase": {}}}


def test_a_server_dry_run_apply_answers_the_result_and_stores_nothing(client: TestClient) -> None:
    created = send(client, f"{NS}/dry", task("dry"), APPLY, fieldManager="a").json
    r = send(client, f"{NS}/dry", task("dry"), APPLY, fieldManager="b", dryRun="All")
    assert r.status_code == 200
    assert sorted(managers(r.json)) == [("a", "Apply", ""), ("b", "Apply", "")]
    assert client.simulate_get(f"{NS}/dry").json == created


def test_managed_fields_reset_by_a_patch_with_one_empty_entry(client: TestClient) -> None:
    send(client, f"{NS}/reset", task("reset"), APPLY, fieldManager="a")
    patch = [{"op": "replace", "path": "/metadata/managedFields", "value": [{}]}]
    r = send(client, f"{NS}/reset", patch, "application/json-patch+json")
    assert r.status_code == 200, r.text
    assert "managedFields" not in r.json["metadata"]


def test_managed_fields_the_field_manager_cannot_read_are_replaced(client: TestClient) -> None:
    """As kube's field manager: entries it cannot decode (an unknown operation, no
    fieldsType) are not refused but replaced, by the live object's or the write's own."""
    for entry in ({"manager": "m", "operation": "Replace"}, {"manager": "m", "operation": "Apply"}):
        r = post(client, NS, task("bad", managedFields=[entry]), params={"fieldManager": "w"})
        assert r.status_code == 201, r.text
        assert managers(r.json) == [("w", "Update", "")]
        client.simulate_delete(f"{NS}/bad")


def test_the_openapi_publishes_the_list_types_apply_merges_by(client: TestClient) -> None:
    doc = client.simulate_get("/openapi/v3/apis/search.task.example.example.com/v1").json
    schemas = doc["components"]["schemas"]
    meta = next(v for k, v in schemas.items() if k.endswith(".ObjectMeta"))["properties"]
    assert meta["finalizers"]["x-kubernetes-list-type"] == "set"
    assert meta["ownerReferences"]["x-kubernetes-list-type"] == "map"
    assert meta["ownerReferences"]["x-kubernetes-list-map-keys"] == ["uid"]


def test_owner_references_are_owned_item_by_item_by_uid(client: TestClient) -> None:
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-1"}
    body = task("own", ownerReferences=[owner])
    r = send(client, f"{NS}/own", body, APPLY, fieldManager="a")
    fields = r.json["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]
    assert fields == {
        "f:ownerReferences": {
            'k:{"uid":"u-1"}': {
                ".": {},
                "f:apiVersion": {},
                "f:kind": {},
                "f:name": {},
                "f:uid": {},
            }
        }
    }
