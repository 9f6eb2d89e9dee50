"""O1-O4: OpenAPI documents derived from the registry of kinds."""

from __future__ import annotations

import hashlib
from typing import Any

from falcon.testing import TestClient

GV_PATH = "/openapi/v3/apis/search.task.example.example.com/v1"
GVK = {"group": "search.task.example.example.com", "version": "v1", "kind": "CustomTask"}


def refs(node: Any) -> set[str]:
    """Every $ref in a document."""
    if isinstance(node, dict):
        found = {node["$ref"]} if "$ref" in node else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


def test_o3_index_lists_only_our_group_with_a_content_hash(client: TestClient) -> None:
    index = client.simulate_get("/openapi/v3").json
    assert list(index["paths"]) == ["apis/search.task.example.example.com/v1"]
    url = index["paths"]["apis/search.task.example.example.com/v1"]["serverRelativeURL"]
    document = client.simulate_get(GV_PATH).content
    assert url == f"{GV_PATH}?hash={hashlib.sha512(document).hexdigest().upper()}"


def test_o3_stale_hash_is_served_without_redirect_or_immutable_caching(client: TestClient) -> None:
    r = client.simulate_get(GV_PATH, params={"hash": "STALE"})
    assert r.status_code == 200
    assert "immutable" not in r.headers["cache-control"]
    current = client.simulate_get("/openapi/v3").json["paths"]
    url = current["apis/search.task.example.example.com/v1"]["serverRelativeURL"]
    fresh = client.simulate_get(GV_PATH, query_string=url.split("?", 1)[1])
    assert fresh.headers["cache-control"] == "public, immutable"


def test_o4_schemas_are_self_contained_with_gvk_lists(client: TestClient) -> None:
    doc = client.simulate_get(GV_PATH).json
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    task = schemas["com.example.example.task.search.v1.CustomTask"]
    assert task["x-kubernetes-group-version-kind"] == [GVK]
    spec = task["properties"]["spec"]
    assert spec["required"] == ["deadline", "priority"]
    assert spec["properties"]["priority"]["maximum"] == 10
    assert spec["properties"]["taskState"]["enum"] == ["Pending", "Finished"]
    meta = schemas["com.example.example.task.search.v1.ObjectMeta"]["properties"]
    assert {"name", "namespace", "labels", "annotations", "uid"} <= set(meta)
    for schema in schemas.values():
        assert schema.get("description"), schema


def test_o4_write_operations_declare_server_side_validation(client: TestClient) -> None:
    doc = client.simulate_get(GV_PATH).json
    item = doc["paths"][
        "/apis/search.task.example.example.com/v1/namespaces/{namespace}/customtasks/{name}"
    ]
    collection = doc["paths"][
        "/apis/search.task.example.example.com/v1/namespaces/{namespace}/customtasks"
    ]
    for op in (collection["post"], item["put"], *([item["patch"]] if "patch" in item else [])):
        assert op["x-kubernetes-group-version-kind"] == GVK
        names = {p["name"] for p in op["parameters"]}
        assert {"fieldValidation", "fieldManager", "dryRun"} <= names
    if "patch" in item:
        assert (
            "application/strategic-merge-patch+json" not in item["patch"]["requestBody"]["content"]
        )
    assert "/apis/search.task.example.example.com/v1/customtasks" in doc["paths"]


def test_o1_v2_is_json_with_etag_and_definitions(client: TestClient) -> None:
    r = client.simulate_get("/openapi/v2", headers={"Accept": "application/json"})
    doc = r.json
    assert doc["swagger"] == "2.0"
    for ref in refs(doc):
        assert ref.startswith("#/definitions/")
        assert ref.removeprefix("#/definitions/") in doc["definitions"]
    task = doc["definitions"]["com.example.example.task.search.v1.ClusterTask"]
    assert task["x-kubernetes-group-version-kind"][0]["kind"] == "ClusterTask"
    again = client.simulate_get(
        "/openapi/v2", headers={"Accept": "application/json", "If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304


def test_o2_protobuf_accept_gets_an_empty_message(client: TestClient) -> None:
    r = client.simulate_get(
        "/openapi/v2",
        headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert r.content == b""


KUBE_SUCCESS_CODES = {
    "get": ["200"],
    "list": ["200"],
    "post": ["200", "201", "202"],
    "put": ["200", "201"],
    "patch": ["200", "201"],
    "delete": ["200", "202"],
    "deletecollection": ["200"],
}
"""What kube-apiserver's documents declare per action (api/openapi-spec/v3 and the CRD
builder of apiextensions-apiserver); patch as built-in resources, since an apply may create."""


def operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        op
        for item in doc["paths"].values()
        for method, op in item.items()
        if method != "parameters"
    ]


def test_o4_operation_ids_are_unique_and_named_as_kube_names_them(
    client: TestClient,
) -> None:
    doc = client.simulate_get(GV_PATH).json
    ids = [op["operationId"] for op in operations(doc)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    base = "/apis/search.task.example.example.com/v1"
    namespaced = f"{base}/namespaces/{{namespace}}/customtasks"
    named = {
        (
            f"{base}/customtasks",
            "get",
        ): "listSearchTaskExampleExampleComV1CustomTaskForAllNamespaces",
        (namespaced, "get"): "listSearchTaskExampleExampleComV1NamespacedCustomTask",
        (namespaced, "post"): "createSearchTaskExampleExampleComV1NamespacedCustomTask",
        (namespaced, "delete"): "deleteSearchTaskExampleExampleComV1CollectionNamespacedCustomTask",
        (
            f"{namespaced}/{{name}}",
            "put",
        ): "replaceSearchTaskExampleExampleComV1NamespacedCustomTask",
        (f"{namespaced}/{{name}}/status", "patch"): (
            "patchSearchTaskExampleExampleComV1NamespacedCustomTaskStatus"
        ),
        (f"{base}/clustertasks/{{name}}", "get"): "readSearchTaskExampleExampleComV1ClusterTask",
    }
    for (path, method), operation_id in named.items():
        assert doc["paths"][path][method]["operationId"] == operation_id
    assert {tag for op in operations(doc) for tag in op["tags"]} == {
        "searchTaskExampleExampleCom_v1"
    }


def test_o4_each_verb_declares_the_success_codes_kube_declares(client: TestClient) -> None:
    doc = client.simulate_get(GV_PATH).json
    for op in operations(doc):
        responses = op["responses"]
        assert sorted(responses) == KUBE_SUCCESS_CODES[op["x-kubernetes-action"]], op["operationId"]
        for code, response in responses.items():
            assert (
                response["description"] == {"200": "OK", "201": "Created", "202": "Accepted"}[code]
            )
            assert set(response["content"]) == {"application/json", "application/yaml"}
    v2 = client.simulate_get("/openapi/v2", headers={"Accept": "application/json"}).json
    for item in v2["paths"].values():
        for method, op in item.items():
            if method != "parameters":
                assert sorted(op["responses"]) == KUBE_SUCCESS_CODES[op["x-kubernetes-action"]]


def test_o4_deletes_take_kubes_delete_options(client: TestClient) -> None:
    doc = client.simulate_get(GV_PATH).json
    base = "/apis/search.task.example.example.com/v1/namespaces/{namespace}/customtasks"
    one, collection = doc["paths"][f"{base}/{{name}}"]["delete"], doc["paths"][base]["delete"]
    for op in (one, collection):
        assert op["requestBody"]["required"] is False
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {
            "$ref": "#/components/schemas/com.example.example.task.search.v1.DeleteOptions"
        }
        assert {"dryRun", "propagationPolicy", "gracePeriodSeconds"} <= {
            p["name"] for p in op["parameters"]
        }
    names = {p["name"] for p in collection["parameters"]}
    assert {"labelSelector", "fieldSelector", "limit"} <= names
    assert not names & {"watch", "allowWatchBookmarks"}  # kube's deletecollection takes neither
