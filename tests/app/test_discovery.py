"""D1-D5: discovery documents derived from the registry of kinds."""

from __future__ import annotations

import importlib

from falcon.testing import TestClient

from handlers.registry import VERBS, registry
from tests.support.servers import ROOT

GV = "search.task.example.example.com/v1"
V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def test_d1_resource_list_names_every_kind_with_exactly_its_verb_modules(
    client: TestClient,
) -> None:
    body = client.simulate_get(f"/apis/{GV}").json
    assert (body["kind"], body["apiVersion"], body["groupVersion"]) == ("APIResourceList", "v1", GV)
    by_name = {r["name"]: r for r in body["resources"]}
    assert by_name["customtasks"] == {
        "name": "customtasks",
        "singularName": "customtask",
        "namespaced": True,
        "kind": "CustomTask",
        "verbs": list(VERBS),
        "shortNames": ["cutask"],
        "categories": ["alltasks"],
    }
    assert by_name["clustertasks"]["namespaced"] is False
    assert by_name["combinedtasks"] == {
        "name": "combinedtasks",
        "singularName": "combinedtask",
        "namespaced": True,
        "kind": "CombinedTask",
        "verbs": ["get", "list", "watch"],
    }
    assert by_name["customtasks/status"] == {
        "name": "customtasks/status",
        "singularName": "",
        "namespaced": True,
        "kind": "CustomTask",
        "verbs": ["get", "patch", "update"],
    }
    for resource in body["resources"]:
        assert "all" not in resource.get("categories", ())
        assert resource["verbs"], resource


def test_d1_verbs_are_the_modules_present() -> None:
    for served in registry():
        modules = {p.stem for p in (ROOT / "handlers" / served.kind.plural).glob("*.py")}
        assert set(served.verbs) == modules & set(VERBS)
        if served.kind.has_objects:
            assert {"get", "list", "watch"} <= set(served.verbs)
        else:  # the search: read as the tutorial serves it
            assert served.verbs == ["get"]
        # the declaration itself, not a copy; it has no handlers of its own to be left empty
        assert served.kind is importlib.import_module(f"handlers.{served.kind.plural}").KIND
        assert not hasattr(served.kind, "handlers")


def test_d2_aggregated_discovery_honours_accept_order_with_exact_media_type(
    client: TestClient,
) -> None:
    for accept, version in (
        (f"{V2},{V2BETA1},application/json", "v2"),
        (f"{V2BETA1},application/json", "v2beta1"),
    ):
        r = client.simulate_get("/apis", headers={"Accept": accept})
        assert r.headers["content-type"] == (V2 if version == "v2" else V2BETA1)
        body = r.json
        assert body["apiVersion"] == f"apidiscovery.k8s.io/{version}"
        [group] = body["items"]
        [gv] = group["versions"]
        assert gv["freshness"] == "Current"
        kinds = {r["resource"]: r for r in gv["resources"]}
        assert kinds["clustertasks"]["scope"] == "Cluster"
        assert kinds["clustertasks"]["subresources"] == [
            {
                "subresource": "status",
                "responseKind": {
                    "group": "search.task.example.example.com",
                    "version": "v1",
                    "kind": "ClusterTask",
                },
                "verbs": ["get", "patch", "update"],
            }
        ]
        assert kinds["customtasks"]["responseKind"] == {
            "group": "search.task.example.example.com",
            "version": "v1",
            "kind": "CustomTask",
        }
        # the search has no kind: kube-apiserver converts such an APIResource to an empty
        # responseKind (a missing one made client-go 1.27 fail on the whole document)
        assert kinds["details"] == {
            "resource": "details",
            "singularResource": "",
            "scope": "Cluster",
            "responseKind": {"group": "", "version": "", "kind": ""},
            "verbs": ["get"],
        }


def test_d2_etag_and_if_none_match_give_304(client: TestClient) -> None:
    first = client.simulate_get("/apis", headers={"Accept": V2})
    etag = first.headers["etag"]
    again = client.simulate_get("/apis", headers={"Accept": V2, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    stale = client.simulate_get("/apis", headers={"Accept": V2, "If-None-Match": '"other"'})
    assert stale.status_code == 200


def test_d2_unsupported_accept_is_406_never_503(client: TestClient) -> None:
    r = client.simulate_get("/apis", headers={"Accept": "application/vnd.kubernetes.protobuf"})
    assert r.status_code == 406
    assert r.json["reason"] == "NotAcceptable"


def test_d3_legacy_group_list_and_group(client: TestClient) -> None:
    groups = client.simulate_get("/apis", headers={"Accept": "application/json, */*"}).json
    assert groups["kind"] == "APIGroupList"
    [group] = groups["groups"]
    assert group["preferredVersion"] == {"groupVersion": GV, "version": "v1"}
    one = client.simulate_get("/apis/search.task.example.example.com").json
    assert (one["kind"], one["name"]) == ("APIGroup", "search.task.example.example.com")
    assert client.simulate_get("/apis/apps").status_code == 404


def test_d4_api_is_a_404_status(client: TestClient) -> None:
    for path in ("/api", "/api/v1"):
        r = client.simulate_get(path)
        assert r.status_code == 404
        assert r.json["kind"] == "Status"
        assert r.json["message"] == "the server could not find the requested resource"


def test_d5_version(client: TestClient) -> None:
    body = client.simulate_get("/version").json
    assert body["major"] == "1"
    assert body["gitVersion"].startswith("v1.")
