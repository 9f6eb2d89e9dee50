"""R2-R12 through the whole app in-process: create, get, list, update, delete and rendering."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from falcon.testing import Result, TestClient

from proxy.app import create_app
from proxy.settings import Settings
from store.sqlite import SQLiteStore
from tests.conftest import AllowAll

GV = "/apis/search.task.example.example.com/v1"
NS = f"{GV}/namespaces/default/customtasks"
CLUSTER = f"{GV}/clustertasks"
TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
SPEC = {"priority": 3, "deadline": "2025-08-19T09:17:55Z", "details": "Sample task details"}


def task(name: str = "", **meta: Any) -> dict[str, Any]:
    metadata = {"name": name, **meta} if name else dict(meta)
    return {
        "apiVersion": "search.task.example.example.com/v1",
        "kind": "CustomTask",
        "metadata": metadata,
        "spec": dict(SPEC),
    }


def post(client: TestClient, path: str, body: Any, **kw: Any) -> Result:
    return client.simulate_post(path, body=orjson.dumps(body), **kw)


def status_of(r: Result) -> tuple[int, str]:
    assert r.json["kind"] == "Status", r.text
    assert r.json["code"] == r.status_code
    return r.status_code, r.json["reason"]


# R8 create


def test_r8_create_returns_201_with_server_owned_metadata(client: TestClient) -> None:
    r = post(
        client, NS, task("a", uid="mine", generation=7, creationTimestamp="1999-01-01T00:00:00Z")
    )
    assert r.status_code == 201
    meta = r.json["metadata"]
    assert meta["name"] == "a"
    assert meta["namespace"] == "default"
    assert meta["uid"] != "mine"
    assert meta["generation"] == 1
    assert meta["creationTimestamp"] != "1999-01-01T00:00:00Z"
    assert int(meta["resourceVersion"]) > 0
    assert r.json["spec"]["taskState"] == "Pending"
    assert client.simulate_get(f"{NS}/a").json == r.json


def test_r8_create_on_item_path_takes_the_name_from_the_url(client: TestClient) -> None:
    body = {"spec": SPEC}
    r = client.simulate_post(f"{CLUSTER}/foo", body=orjson.dumps(body))
    assert r.status_code == 201
    assert (r.json["metadata"]["name"], r.json["kind"]) == ("foo", "ClusterTask")
    assert "namespace" not in r.json["metadata"]
    mismatch = post(client, f"{CLUSTER}/bar", {"metadata": {"name": "baz"}, "spec": SPEC})
    assert status_of(mismatch) == (400, "BadRequest")


def test_r8_generate_name(client: TestClient) -> None:
    r = post(client, NS, task(generateName="job-"))
    assert r.status_code == 201
    name = r.json["metadata"]["name"]
    assert name.startswith("job-") and len(name) == len("job-") + 5


def test_r8_name_is_required_and_must_be_dns_1123(client: TestClient) -> None:
    r = post(client, NS, task())
    assert status_of(r) == (422, "Invalid")
    assert r.json["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value: name or generateName is required",
            "field": "metadata.name",
        }
    ]
    bad = post(client, NS, task("Not_A/Name"))
    assert status_of(bad) == (422, "Invalid")
    assert bad.json["details"]["causes"][0]["field"] == "metadata.name"


def test_r8_namespace_in_body_must_match_url(client: TestClient) -> None:
    r = post(client, NS, task("a", namespace="other"))
    assert status_of(r) == (400, "BadRequest")
    assert r.json["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )


def test_r8_duplicate_is_already_exists_in_kube_wording(client: TestClient) -> None:
    assert post(client, NS, task("dup")).status_code == 201
    r = post(client, NS, task("dup"))
    assert status_of(r) == (409, "AlreadyExists")
    assert r.json["message"] == 'customtasks.search.task.example.example.com "dup" already exists'
    assert r.json["details"] == {
        "name": "dup",
        "group": "search.task.example.example.com",
        "kind": "customtasks",
    }


def test_r8_validation_failures_are_422_with_one_cause_per_field(client: TestClient) -> None:
    body = task("bad")
    body["spec"] = {"priority": 11, "taskState": "Done", "deadline": "tomorrow"}
    r = post(client, NS, body)
    assert status_of(r) == (422, "Invalid")
    causes = {c["field"]: c for c in r.json["details"]["causes"]}
    assert set(causes) == {"spec.priority", "spec.taskState", "spec.deadline"}
    assert causes["spec.priority"]["message"] == (
        "Invalid value: 11: spec.priority in body should be less than or equal to 10"
    )
    assert causes["spec.taskState"]["reason"] == "FieldValueNotSupported"
    assert r.json["details"]["kind"] == "CustomTask"
    assert r.json["message"].startswith(
        'CustomTask.search.task.example.example.com "bad" is invalid: ['
    )
    missing = post(client, NS, {"metadata": {"name": "m"}, "spec": {"priority": "high"}})
    fields = {c["field"]: c["reason"] for c in missing.json["details"]["causes"]}
    assert fields == {
        "spec.priority": "FieldValueTypeInvalid",
        "spec.deadline": "FieldValueRequired",
    }
    assert client.simulate_get(f"{NS}/bad").status_code == 404


def test_r8_field_validation_strict_warn_ignore(client: TestClient) -> None:
    body = task("fv")
    body["spec"]["foo"] = 1
    body["extra"] = True
    strict = post(client, NS, body, params={"fieldValidation": "Strict"})
    assert status_of(strict) == (400, "BadRequest")
    assert strict.json["message"] == (
        'strict decoding error: unknown field "extra", unknown field "spec.foo"'
    )
    warn = post(client, NS, body, params={"fieldValidation": "Warn"})
    assert warn.status_code == 201
    assert warn.headers["warning"] == (
        '299 - "unknown field \\"extra\\"", 299 - "unknown field \\"spec.foo\\""'
    )
    assert "foo" not in warn.json["spec"] and "extra" not in warn.json
    body["metadata"]["name"] = "fv2"
    ignore = post(client, NS, body, params={"fieldValidation": "Ignore"})
    assert ignore.status_code == 201 and "warning" not in ignore.headers
    loud = post(client, NS, body, params={"fieldValidation": "Loud"})
    assert status_of(loud) == (422, "Invalid")
    assert loud.json["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loud": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )


def test_r8_dry_run_persists_nothing(client: TestClient) -> None:
    r = post(client, NS, task("dry"), params={"dryRun": "All"})
    assert r.status_code == 201
    assert r.json["metadata"]["name"] == "dry"
    assert client.simulate_get(f"{NS}/dry").status_code == 404
    assert client.simulate_get(NS).json["items"] == []


def test_r8_resource_version_on_create_is_rejected(client: TestClient) -> None:
    r = post(client, NS, task("rv", resourceVersion="5"))
    assert status_of(r) == (400, "BadRequest")


# R2 bodies and negotiation


def test_r2_yaml_body_without_content_type(client: TestClient) -> None:
    yaml_body = (
        b"apiVersion: search.task.example.example.com/v1\nkind: CustomTask\n"
        b"spec:\n  priority: 2\n  deadline: 2025-08-19T16:52:15Z\n"
    )
    r = client.simulate_post(f"{NS}/from-yaml", body=yaml_body, headers={"Content-Type": ""})
    assert r.status_code == 201, r.text
    assert r.json["spec"]["deadline"] == "2025-08-19T16:52:15Z"


def test_r2_bad_bodies_and_media_types(client: TestClient) -> None:
    assert status_of(
        client.simulate_post(NS, body=b"{not json", content_type="application/json")
    ) == (
        400,
        "BadRequest",
    )
    assert status_of(client.simulate_post(NS, body=b"a: [", content_type="application/yaml")) == (
        400,
        "BadRequest",
    )
    assert status_of(client.simulate_post(NS, body=b"x", content_type="text/plain")) == (
        415,
        "UnsupportedMediaType",
    )
    r = client.simulate_get(NS, headers={"Accept": "application/vnd.kubernetes.protobuf"})
    assert status_of(r) == (406, "NotAcceptable")


def test_r2_yaml_output(client: TestClient) -> None:
    post(client, NS, task("y"))
    r = client.simulate_get(f"{NS}/y", headers={"Accept": "application/yaml"})
    assert r.headers["content-type"] == "application/yaml"
    assert b"name: y" in r.content


# R3 paths and verbs


def test_r3_unknown_paths_and_verbs(client: TestClient) -> None:
    assert status_of(client.simulate_get(f"{GV}/widgets")) == (404, "NotFound")
    assert status_of(client.simulate_get(f"{GV}/namespaces/default/clustertasks")) == (
        404,
        "NotFound",
    )
    assert status_of(client.simulate_get(f"{NS}/a/status")) == (404, "NotFound")
    assert status_of(client.simulate_post(f"{GV}/customtasks", body=b"{}")) == (
        405,
        "MethodNotAllowed",
    )
    r = client.simulate_get(f"{NS}/missing")
    assert status_of(r) == (404, "NotFound")
    assert r.json["message"] == 'customtasks.search.task.example.example.com "missing" not found'


# R9 update


def test_r9_update_bumps_generation_only_for_spec_changes(client: TestClient) -> None:
    created = post(client, NS, task("u")).json
    labelled = {**created, "metadata": {**created["metadata"], "labels": {"a": "b"}}}
    r1 = client.simulate_put(f"{NS}/u", body=orjson.dumps(labelled))
    assert r1.status_code == 200
    assert r1.json["metadata"]["generation"] == 1
    assert int(r1.json["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    changed = {**r1.json, "spec": {**r1.json["spec"], "priority": 9}}
    r2 = client.simulate_put(f"{NS}/u", body=orjson.dumps(changed))
    assert r2.json["metadata"]["generation"] == 2
    assert r2.json["metadata"]["uid"] == created["metadata"]["uid"]
    assert r2.json["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


def test_r9_stale_resource_version_is_a_conflict(client: TestClient) -> None:
    created = post(client, NS, task("c")).json
    same = client.simulate_put(f"{NS}/c", body=orjson.dumps(created))
    assert same.json == created  # a no-op update writes nothing
    labelled = {**created, "metadata": {**created["metadata"], "labels": {"v": "2"}}}
    assert client.simulate_put(f"{NS}/c", body=orjson.dumps(labelled)).status_code == 200
    edited = {**created, "spec": {**created["spec"], "priority": 1}}
    r = client.simulate_put(f"{NS}/c", body=orjson.dumps(edited))
    assert status_of(r) == (409, "Conflict")
    assert r.json["message"] == (
        'Operation cannot be fulfilled on customtasks.search.task.example.example.com "c": the '
        "object has been modified; please apply your changes to the latest version and try again"
    )


def test_r9_missing_resource_version_is_422_as_for_crds(client: TestClient) -> None:
    post(client, NS, task("m"))
    r = client.simulate_put(f"{NS}/m", body=orjson.dumps(task("m")))
    assert status_of(r) == (422, "Invalid")
    assert r.json["details"]["causes"][0] == {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: 0x0: must be specified for an update",
        "field": "metadata.resourceVersion",
    }


def test_r9_update_of_missing_object_is_404_and_dry_run_changes_nothing(client: TestClient) -> None:
    r = client.simulate_put(f"{NS}/ghost", body=orjson.dumps(task("ghost", resourceVersion="1")))
    assert status_of(r) == (404, "NotFound")
    created = post(client, NS, task("d")).json
    changed = {**created, "spec": {**created["spec"], "priority": 0}}
    dry = client.simulate_put(f"{NS}/d", body=orjson.dumps(changed), params={"dryRun": "All"})
    assert dry.json["spec"]["priority"] == 0
    assert client.simulate_get(f"{NS}/d").json == created


# R11 delete


def test_r11_delete_returns_the_object_and_honours_preconditions(client: TestClient) -> None:
    created = post(client, NS, task("del")).json
    wrong = {"preconditions": {"uid": "nope"}}
    r = client.simulate_delete(
        f"{NS}/del", body=orjson.dumps(wrong), content_type="application/json"
    )
    assert status_of(r) == (409, "Conflict")
    assert "Precondition failed: UID in precondition: nope" in r.json["message"]
    dry = {"dryRun": ["All"], "propagationPolicy": "Background"}
    r = client.simulate_delete(f"{NS}/del", body=orjson.dumps(dry), content_type="application/json")
    assert r.status_code == 200
    assert client.simulate_get(f"{NS}/del").status_code == 200
    r = client.simulate_delete(f"{NS}/del")
    assert r.status_code == 200
    assert r.json["metadata"]["uid"] == created["metadata"]["uid"]
    assert status_of(client.simulate_get(f"{NS}/del")) == (404, "NotFound")
    assert status_of(client.simulate_delete(f"{NS}/del")) == (404, "NotFound")


# R5 list


def make(client: TestClient, names: list[str], path: str = NS, **labels: str) -> None:
    for name in names:
        assert post(client, path, task(name, labels=dict(labels))).status_code == 201


def names_of(r: Result) -> list[str]:
    return [i["metadata"]["name"] for i in r.json["items"]]


def test_r5_list_has_resource_version_and_kind(client: TestClient) -> None:
    make(client, ["b", "a"])
    r = client.simulate_get(NS)
    assert (r.json["kind"], r.json["apiVersion"]) == (
        "CustomTaskList",
        "search.task.example.example.com/v1",
    )
    assert names_of(r) == ["a", "b"]
    assert int(r.json["metadata"]["resourceVersion"]) >= 2


def test_r5_all_namespaces_and_namespace_scoping(client: TestClient) -> None:
    make(client, ["x"])
    make(client, ["x", "y"], f"{GV}/namespaces/other/customtasks")
    assert len(client.simulate_get(f"{GV}/customtasks").json["items"]) == 3
    assert names_of(client.simulate_get(f"{GV}/namespaces/other/customtasks")) == ["x", "y"]


def test_r5_paging_is_consistent_at_the_first_pages_revision(client: TestClient) -> None:
    make(client, ["p1", "p2", "p3", "p4"])
    first = client.simulate_get(NS, params={"limit": "2"})
    assert names_of(first) == ["p1", "p2"]
    token = first.json["metadata"]["continue"]
    revision = first.json["metadata"]["resourceVersion"]
    client.simulate_delete(f"{NS}/p3")
    make(client, ["p5"])
    second = client.simulate_get(NS, params={"limit": "2", "continue": token})
    assert names_of(second) == ["p3", "p4"]
    assert second.json["metadata"]["resourceVersion"] == revision
    assert "continue" not in second.json["metadata"]
    assert names_of(client.simulate_get(NS)) == ["p1", "p2", "p4", "p5"]


def test_r5_bad_paging_parameters(client: TestClient) -> None:
    assert status_of(client.simulate_get(NS, params={"continue": "garbage"}))[0] == 400
    bad_limit = client.simulate_get(NS, params={"limit": "ten"})
    assert status_of(bad_limit) == (400, "BadRequest")
    assert bad_limit.json["message"] == 'strconv.ParseInt: parsing "ten": invalid syntax'
    assert client.simulate_get(NS, params={"limit": "-1"}).status_code == 200  # kube: unpaged
    r = client.simulate_get(NS, params={"resourceVersion": "999999"})
    assert status_of(r) == (504, "Timeout")


def test_r5_selectors_filter_lists(client: TestClient) -> None:
    make(client, ["ax"], a="x")
    make(client, ["ay"], a="y")
    make(client, ["az"], a="z")
    make(client, ["axb"], a="x", b="1")
    selected = client.simulate_get(NS, params={"labelSelector": "a in (x,y),!b"})
    assert names_of(selected) == ["ax", "ay"]
    one = client.simulate_get(NS, params={"fieldSelector": "metadata.name=az"})
    assert names_of(one) == ["az"]
    paged = client.simulate_get(NS, params={"labelSelector": "a=x", "limit": "1"})
    assert names_of(paged) == ["ax"]
    rest = client.simulate_get(
        NS,
        params={
            "labelSelector": "a=x",
            "limit": "1",
            "continue": paged.json["metadata"]["continue"],
        },
    )
    assert names_of(rest) == ["axb"]
    by_spec = client.simulate_get(
        NS, params={"fieldSelector": "spec.priority=3,spec.taskState=Pending"}
    )
    assert len(names_of(by_spec)) == 4
    r = client.simulate_get(NS, params={"fieldSelector": "spec.details=x"})
    assert status_of(r) == (400, "BadRequest")
    assert r.json["message"] == "field label not supported: spec.details"


# R7 / R7b rendering


def test_r7_table_columns_cells_and_objects(client: TestClient) -> None:
    make(client, ["t1", "t2"], env="prod")
    r = client.simulate_get(NS, headers={"Accept": TABLE})
    table = r.json
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    columns = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert columns == [
        ("Name", 0),
        ("Priority", 0),
        ("Deadline", 0),
        ("State", 0),
        ("Age", 0),
        ("Details", 1),
    ]
    assert table["columnDefinitions"][0]["format"] == "name"
    assert table["metadata"]["resourceVersion"]
    row = table["rows"][0]
    assert row["cells"][:4] == ["t1", 3, "2025-08-19T09:17:55Z", "Pending"]
    assert row["cells"][5] == "Sample task details"
    assert row["cells"][4].endswith("s")
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["labels"] == {"env": "prod"}
    full = client.simulate_get(NS, headers={"Accept": TABLE}, params={"includeObject": "Object"})
    assert full.json["rows"][0]["object"]["spec"]["priority"] == 3
    none = client.simulate_get(NS, headers={"Accept": TABLE}, params={"includeObject": "None"})
    assert "object" not in none.json["rows"][0]
    one = client.simulate_get(f"{NS}/t2", headers={"Accept": TABLE}).json
    assert [r["cells"][0] for r in one["rows"]] == ["t2"]


def test_r7b_partial_object_metadata(client: TestClient) -> None:
    make(client, ["m1"])
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    lst = client.simulate_get(NS, headers={"Accept": accept}).json
    assert lst["kind"] == "PartialObjectMetadataList"
    assert lst["metadata"]["resourceVersion"]
    assert lst["items"][0] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": client.simulate_get(f"{NS}/m1").json["metadata"],
    }
    one = client.simulate_get(
        f"{NS}/m1",
        headers={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"},
    ).json
    assert one["kind"] == "PartialObjectMetadata" and "spec" not in one


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (5, "5s"),
        (119, "119s"),
        (200, "3m20s"),
        (600, "10m"),
        (7320, "122m"),
        (4 * 3600 + 60, "4h1m"),
        (30 * 3600, "30h"),
        (51 * 3600, "2d3h"),
        (10 * 86400, "10d"),
        (800 * 86400, "2y70d"),
    ],
)
def test_r7_age_is_rendered_like_kube(seconds: int, expected: str) -> None:
    from handlers.api.columns import human_duration

    assert human_duration(seconds) == expected


def test_r5_continue_token_older_than_the_log_is_410_expired(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    settings = Settings.from_env({"APISERVER_SQLITE_PATH": str(tmp_path / "s.db")})
    client = TestClient(create_app(settings, store=store, authorizer=AllowAll()))
    make(client, ["e1", "e2", "e3"])
    token = client.simulate_get(NS, params={"limit": "1"}).json["metadata"]["continue"]
    make(client, ["e4"])
    store.compact(min_age_seconds=0, min_revisions=0)
    r = client.simulate_get(NS, params={"limit": "1", "continue": token})
    assert status_of(r) == (410, "Expired")
    assert r.json["message"].startswith("The provided continue parameter is too old")
    fresh = r.json["metadata"]["continue"]
    assert names_of(client.simulate_get(NS, params={"continue": fresh})) == ["e2", "e3", "e4"]
    old = client.simulate_get(NS, params={"limit": "1", "resourceVersion": "2"})
    assert status_of(old) == (410, "Expired")


# R10 patch (merge and JSON patch; server-side apply comes with watch)


def patch(client: TestClient, name: str, body: Any, content_type: str, **kw: Any) -> Result:
    return client.simulate_patch(
        f"{NS}/{name}", body=orjson.dumps(body), content_type=content_type, **kw
    )


def test_r10_merge_patch_merges_and_null_deletes(client: TestClient) -> None:
    post(client, NS, task("mp", labels={"env": "prod", "tier": "web"}))
    r = patch(
        client,
        "mp",
        {"metadata": {"labels": {"env": None}}, "spec": {"priority": 7}},
        "application/merge-patch+json",
        params={"fieldManager": "kubectl-label"},
    )
    assert r.status_code == 200, r.text
    assert r.json["metadata"]["labels"] == {"tier": "web"}
    assert r.json["spec"]["priority"] == 7
    assert r.json["spec"]["details"] == "Sample task details"
    assert r.json["metadata"]["generation"] == 2


def test_r10_concurrent_merge_patches_all_apply_none_is_refused(client: TestClient) -> None:
    """Each patch is re-applied to the newer object after a concurrent write, as in kube:
    under contention nobody gets a 409 and no patch is lost."""
    post(client, NS, task("contended"))

    def annotate(writer: int) -> list[int]:
        codes = []
        for i in range(25):
            body = {"metadata": {"annotations": {f"w{writer}-{i}": "x"}}}
            r = patch(client, "contended", body, "application/merge-patch+json")
            codes.append(r.status_code)
        return codes

    with ThreadPoolExecutor(8) as pool:
        codes = [code for result in pool.map(annotate, range(8)) for code in result]
    assert set(codes) == {200}
    annotations = client.simulate_get(f"{NS}/contended").json["metadata"]["annotations"]
    assert len(annotations) == 8 * 25


def test_r10_json_patch_with_test_and_failures(client: TestClient) -> None:
    created = post(client, NS, task("jp")).json
    rv = created["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/spec/taskState", "value": "Finished"},
        {"op": "add", "path": "/metadata/labels", "value": {"done": "yes"}},
    ]
    r = patch(client, "jp", ops, "application/json-patch+json")
    assert r.status_code == 200, r.text
    assert r.json["spec"]["taskState"] == "Finished"
    failed = patch(client, "jp", ops[:1], "application/json-patch+json")
    assert status_of(failed) == (422, "Invalid")
    malformed = patch(
        client, "jp", [{"op": "explode", "path": "/x"}], "application/json-patch+json"
    )
    assert status_of(malformed) == (400, "BadRequest")
    assert status_of(patch(client, "jp", {"op": "x"}, "application/json-patch+json"))[0] == 400


def test_r10_patched_objects_are_validated_and_versions_are_preconditions(
    client: TestClient,
) -> None:
    post(client, NS, task("pv"))
    bad = patch(client, "pv", {"spec": {"priority": 42}}, "application/merge-patch+json")
    assert status_of(bad) == (422, "Invalid")
    relabel = {"metadata": {"labels": {"v": "2"}}}
    assert patch(client, "pv", relabel, "application/merge-patch+json").status_code == 200
    stale = patch(
        client,
        "pv",
        {"metadata": {"resourceVersion": "1"}, "spec": {"priority": 2}},
        "application/merge-patch+json",
    )
    assert status_of(stale) == (409, "Conflict")
    forced = patch(
        client,
        "pv",
        {"spec": {"priority": 2}},
        "application/merge-patch+json",
        params={"force": "true"},
    )
    assert status_of(forced) == (422, "Invalid")
    assert forced.json["message"].endswith("may not be specified for non-apply patch")
    assert status_of(patch(client, "nope", {}, "application/merge-patch+json")) == (404, "NotFound")


def test_r10_strategic_merge_patch_is_415_as_for_crds(client: TestClient) -> None:
    post(client, NS, task("smp"))
    r = patch(client, "smp", {"spec": {"priority": 1}}, "application/strategic-merge-patch+json")
    assert status_of(r) == (415, "UnsupportedMediaType")
    assert r.json["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


def test_r3_a_bug_is_a_500_status_without_a_stack_trace(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers.registry import find

    def broken(request: object, deps: object) -> object:
        raise KeyError("secret internals")

    served = find("clustertasks")
    assert served is not None
    monkeypatch.setitem(served.handlers, "list", broken)
    r = client.simulate_get(CLUSTER)
    assert status_of(r) == (500, "InternalError")
    assert "secret internals" not in r.text and "Traceback" not in r.text


# R11 finalizers and deletecollection


def test_r11_delete_with_finalizers_marks_and_removing_the_last_one_deletes(
    client: TestClient,
) -> None:
    created = post(client, NS, task("fin", finalizers=["example.com/keep"])).json
    r = client.simulate_delete(f"{NS}/fin")
    assert r.status_code == 200
    marked = r.json["metadata"]
    assert marked["deletionTimestamp"] and marked["finalizers"] == ["example.com/keep"]
    assert marked["generation"] == created["metadata"]["generation"] + 1
    again = client.simulate_delete(f"{NS}/fin")
    assert again.json["metadata"]["resourceVersion"] == marked["resourceVersion"]
    still = client.simulate_get(f"{NS}/fin")
    assert still.status_code == 200
    gone = patch(client, "fin", {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    assert gone.status_code == 200
    assert status_of(client.simulate_get(f"{NS}/fin")) == (404, "NotFound")


def test_r11_deletecollection_deletes_what_the_selector_matches(client: TestClient) -> None:
    make(client, ["d1", "d2"], team="a")
    make(client, ["d3"], team="b")
    post(client, NS, task("d4", labels={"team": "a"}, finalizers=["example.com/keep"]))
    dry = client.simulate_delete(NS, params={"labelSelector": "team=a", "dryRun": "All"})
    assert len(dry.json["items"]) == 3
    assert len(client.simulate_get(NS).json["items"]) == 4
    r = client.simulate_delete(NS, params={"labelSelector": "team=a"})
    assert r.status_code == 200
    assert r.json["kind"] == "CustomTaskList"
    assert sorted(i["metadata"]["name"] for i in r.json["items"]) == ["d1", "d2", "d4"]
    remaining = client.simulate_get(NS).json["items"]
    assert [i["metadata"]["name"] for i in remaining] == ["d3", "d4"]
    assert remaining[1]["metadata"]["deletionTimestamp"]
    assert status_of(client.simulate_delete(f"{GV}/customtasks"))[0] == 405


# R13 status subresource


def test_r13_status_is_written_only_through_the_subresource(client: TestClient) -> None:
    body = task("st")
    body["status"] = {"phase": "ignored on create"}
    created = post(client, NS, body).json
    assert "status" not in created
    with_status = {**created, "status": {"phase": "Running"}, "spec": {**SPEC, "priority": 9}}
    r = client.simulate_put(f"{NS}/st/status", body=orjson.dumps(with_status))
    assert r.status_code == 200, r.text
    assert r.json["status"] == {"phase": "Running"}
    assert r.json["spec"]["priority"] == 3  # spec changes through /status are ignored
    assert r.json["metadata"]["generation"] == 1
    main = {**r.json, "status": {"phase": "Hacked"}, "spec": {**SPEC, "priority": 4}}
    r2 = client.simulate_put(f"{NS}/st", body=orjson.dumps(main))
    assert r2.json["status"] == {"phase": "Running"}  # status changes through the main path too
    assert (r2.json["spec"]["priority"], r2.json["metadata"]["generation"]) == (4, 2)
    r3 = client.simulate_patch(
        f"{NS}/st/status",
        body=orjson.dumps({"status": {"phase": "Done"}}),
        content_type="application/merge-patch+json",
    )
    assert (r3.json["status"], r3.json["metadata"]["generation"]) == ({"phase": "Done"}, 2)
    assert client.simulate_get(f"{NS}/st/status").json["status"] == {"phase": "Done"}
    assert status_of(client.simulate_delete(f"{NS}/st/status"))[0] == 405
    assert status_of(client.simulate_get(f"{NS}/st/scale"))[0] == 404


def test_r10_server_side_apply_creates_then_merges(client: TestClient) -> None:
    applied = b"apiVersion: search.task.example.example.com/v1\nkind: CustomTask\n"
    applied += b"metadata: {name: ssa, labels: {a: b}}\n"
    applied += b"spec: {priority: 2, deadline: 2030-01-01T00:00:00Z}\n"
    ssa = "application/apply-patch+yaml"
    missing_manager = client.simulate_patch(f"{NS}/ssa", body=applied, content_type=ssa)
    assert status_of(missing_manager) == (422, "Invalid")
    assert missing_manager.json["message"].endswith("is required for apply patch")
    params = {"fieldManager": "kubectl", "force": "false"}
    created = client.simulate_patch(f"{NS}/ssa", body=applied, content_type=ssa, params=params)
    assert created.status_code == 201, created.text
    assert created.json["metadata"]["labels"] == {"a": "b"}
    changed = applied.replace(b"priority: 2", b"priority: 6")
    updated = client.simulate_patch(f"{NS}/ssa", body=changed, content_type=ssa, params=params)
    assert (updated.status_code, updated.json["spec"]["priority"]) == (200, 6)
    assert updated.json["metadata"]["uid"] == created.json["metadata"]["uid"]
