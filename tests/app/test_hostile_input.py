"""Bad input gets kube's 4xx Status at once and changes nothing: wrong types in metadata,
namespaces kube refuses, malformed query parameters and write options, bodies over the
limits (each through the whole app in-process; the store is checked for leftovers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from falcon.testing import Result, TestClient

from proxy.app import create_app
from proxy.dispatch import warning_header
from proxy.requestinfo import parse
from proxy.settings import Settings
from store import Row
from store.sqlite import SQLiteStore
from tests.app.test_crud import GV, NS, post, status_of, task
from tests.conftest import AllowAll

CANNOT = (
    'CustomTask.search.task.example.example.com in version "v1" cannot be handled as a CustomTask: '
)
LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def nothing_stored(client: TestClient, path: str = NS) -> bool:
    items: list[Any] = client.simulate_get(path).json["items"]
    return items == []


@pytest.mark.parametrize(
    ("metadata", "go_says"),
    [
        (
            {"name": "a", "labels": {"x": 1}},
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels "
            "of type string",
        ),
        (
            {"name": "a", "labels": ["x"]},
            "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels "
            "of type map[string]string",
        ),
        (
            {"name": "a", "annotations": {"x": True}},
            "json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.annotations "
            "of type string",
        ),
        (
            {"name": 5},
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.name "
            "of type string",
        ),
        (
            {"generateName": 5},
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.generateName "
            "of type string",
        ),
        (
            {"name": "a", "finalizers": "x"},
            "json: cannot unmarshal string into Go struct field ObjectMeta.metadata.finalizers "
            "of type []string",
        ),
        (
            {"name": "a", "ownerReferences": [{"name": 1}]},
            "json: cannot unmarshal number into Go struct field "
            "OwnerReference.metadata.ownerReferences.name of type string",
        ),
        (
            {"name": "a", "managedFields": [{"manager": 1}]},
            "json: cannot unmarshal number into Go struct field "
            "ManagedFieldsEntry.metadata.managedFields.manager of type string",
        ),
        (
            {"name": "a", "generation": 1.5},
            "json: cannot unmarshal number 1.5 into Go struct field "
            "ObjectMeta.metadata.generation of type int64",
        ),
    ],
)
def test_wrong_types_in_metadata_get_kubes_400_not_a_500(
    client: TestClient, metadata: dict[str, Any], go_says: str
) -> None:
    body = {**task(), "metadata": metadata}
    r = post(client, NS, body)
    assert status_of(r) == (400, "BadRequest")
    assert r.json["message"] == CANNOT + go_says
    assert nothing_stored(client)


@pytest.mark.parametrize(
    ("content_type", "patch"),
    [
        ("application/merge-patch+json", {"metadata": "x"}),
        ("application/merge-patch+json", {"metadata": {"labels": ["x"]}}),
        ("application/json-patch+json", [{"op": "replace", "path": "/metadata", "value": 7}]),
        ("application/apply-patch+yaml", {"metadata": {"annotations": {"a": {"b": "c"}}}}),
    ],
)
def test_a_patch_that_breaks_the_metadatas_types_gets_400_and_changes_nothing(
    client: TestClient, content_type: str, patch: Any
) -> None:
    created = post(client, NS, task("p")).json
    r = client.simulate_patch(
        f"{NS}/p",
        body=orjson.dumps(patch),
        headers={"Content-Type": content_type},
        params={"fieldManager": "m"},
    )
    assert status_of(r) == (400, "BadRequest")
    assert r.json["message"].startswith(CANNOT + "json: cannot unmarshal")
    assert client.simulate_get(f"{NS}/p").json == created


@pytest.mark.parametrize("namespace", ["UPPER", "dotted.ns", "under_score", "a" * 64])
def test_objects_are_not_created_in_namespaces_kube_refuses(
    client: TestClient, namespace: str
) -> None:
    path = f"{GV}/namespaces/{namespace}/customtasks"
    r = post(client, path, task("n"))
    assert status_of(r) == (422, "Invalid")
    cause = r.json["details"]["causes"][0]
    assert cause["field"] == "metadata.namespace"
    rule = "must be no more than 63 characters" if len(namespace) > 63 else LABEL_RULE
    assert cause["message"] == f'Invalid value: "{namespace}": {rule}'
    assert client.simulate_get(f"{path}/n").status_code == 404
    assert nothing_stored(client, path)


@pytest.mark.parametrize("segment", ["a%00b", "a%ffb", "a%0Ab"])
def test_a_path_that_cannot_name_a_namespace_or_object_is_404(
    client: TestClient, segment: str
) -> None:
    for path in (f"{GV}/namespaces/{segment}/customtasks", f"{NS}/{segment}"):
        assert status_of(post(client, path, task()))[0] == 404
        assert status_of(client.simulate_get(path))[0] == 404


def test_a_label_value_with_a_trailing_newline_is_invalid(client: TestClient) -> None:
    r = post(client, NS, task("nl", labels={"a": "b\n"}))
    assert status_of(r) == (422, "Invalid")
    assert r.json["details"]["causes"][0]["field"] == "metadata.labels"


@pytest.mark.parametrize(
    ("metadata", "field", "message"),
    [
        (
            {"finalizers": ["not a name"]},
            "metadata.finalizers",
            'Invalid value: "not a name": name part must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        (  # an entry the field manager can read is kept, so validated (others: replaced)
            {
                "managedFields": [
                    {
                        "manager": "m" * 129,
                        "operation": "Update",
                        "apiVersion": "search.task.example.example.com/v1",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:metadata": {"f:labels": {"f:x": {}}}},
                    }
                ]
            },
            "metadata.managedFields[0].manager",
            "Too long: may not be more than 128 bytes",
        ),
        (
            {"ownerReferences": [{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1"}]},
            "metadata.ownerReferences",
            "Invalid value: /v1, Kind=Event: /v1, Kind=Event is disallowed from being an owner",
        ),
        (
            {
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": True},
                    {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": True},
                ]
            },
            "metadata.ownerReferences",
            'Only one reference can have Controller set to true. Found "true" in references for '
            "A/a and B/b",
        ),
    ],
)
def test_metadata_values_are_validated_as_kube_validates_them(
    client: TestClient, metadata: dict[str, Any], field: str, message: str
) -> None:
    r = post(client, NS, task("v", **metadata))
    assert status_of(r) == (422, "Invalid")
    assert any(
        c["field"] == field and c["message"] == message for c in r.json["details"]["causes"]
    ), r.json
    assert nothing_stored(client)


def get_list(client: TestClient, query: str) -> Result:
    return client.simulate_get(NS, query_string=query)


def test_integer_parameters_are_int64_as_in_kube(client: TestClient) -> None:
    assert get_list(client, "limit=9223372036854775807").status_code == 200
    r = get_list(client, "limit=99999999999999999999")
    assert status_of(r) == (400, "BadRequest")
    assert (
        r.json["message"] == 'strconv.ParseInt: parsing "99999999999999999999": value out of range'
    )
    r = get_list(client, "timeoutSeconds=abc")
    assert status_of(r) == (400, "BadRequest")
    assert r.json["message"] == 'strconv.ParseInt: parsing "abc": invalid syntax'


def test_resource_version_match_values_and_combinations_are_validated(
    client: TestClient,
) -> None:
    r = get_list(client, "resourceVersion=1&resourceVersionMatch=bogus")
    assert status_of(r) == (422, "Invalid")
    assert r.json["message"] == (
        'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: '
        '"bogus": supported values: "Exact", "NotOlderThan", ""'
    )
    r = get_list(client, "resourceVersionMatch=NotOlderThan")
    assert status_of(r) == (422, "Invalid")
    assert (
        "resourceVersionMatch is forbidden unless resourceVersion is provided"
        in (r.json["message"])
    )
    r = get_list(client, "resourceVersion=0&resourceVersionMatch=Exact")
    assert 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"' in r.json["message"]


def test_an_unparsable_resource_version_is_400_for_a_list_and_for_a_watch(
    client: TestClient,
) -> None:
    for watch in ("", "watch=1&"):
        r = get_list(client, f"{watch}resourceVersion=18446744073709551616")
        assert status_of(r) == (400, "BadRequest")
        assert r.json["message"] == (
            'resourceVersion: Invalid value: "18446744073709551616": strconv.ParseUint: parsing '
            '"18446744073709551616": value out of range'
        )


def test_a_watch_from_beyond_any_revision_is_kubes_504_not_an_error_event(
    client: TestClient,
) -> None:
    r = get_list(client, "watch=1&resourceVersion=9223372036854775808")
    assert status_of(r) == (504, "Timeout")
    assert r.json["message"].startswith("Too large resource version: 9223372036854775808")


@pytest.mark.parametrize(
    ("value", "watch"),
    [
        ("true", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("", True),
        ("false", False),
        ("FALSE", False),
        ("0", False),
    ],
)
def test_boolean_parameters_are_read_as_kube_reads_them(value: str, watch: bool) -> None:
    """kube's Convert_Slice_string_To_bool: every value but "0" and "false" (any case)."""
    info = parse("GET", f"{NS}", {"watch": value})
    assert info.verb == ("watch" if watch else "list")


def test_an_empty_field_validation_is_the_default(client: TestClient) -> None:
    body = {**task("fv"), "extra": 1}
    r = post(client, NS, body, params={"fieldValidation": ""})
    assert r.status_code == 201
    assert r.headers["warning"] == '299 - "unknown field \\"extra\\""'


def test_write_options_are_validated_in_kubes_words(client: TestClient) -> None:
    r = post(client, NS, task("dr"), params={"dryRun": "Some"})
    assert status_of(r) == (422, "Invalid")
    assert r.json["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Some"}: '
        'supported values: "All"'
    )
    r = post(client, NS, task("fm"), params={"fieldManager": "a\x07b"})
    assert status_of(r) == (422, "Invalid")
    assert "fieldManager: Invalid value" in r.json["message"]
    assert nothing_stored(client)


def test_delete_options_of_the_wrong_type_or_value_are_refused(client: TestClient) -> None:
    post(client, NS, task("d"))
    r = client.simulate_delete(f"{NS}/d", body=orjson.dumps({"gracePeriodSeconds": "soon"}))
    assert status_of(r) == (400, "BadRequest")
    assert r.json["message"] == (
        "json: cannot unmarshal string into Go struct field DeleteOptions.gracePeriodSeconds "
        "of type int64"
    )
    r = client.simulate_delete(f"{NS}/d", body=orjson.dumps({"preconditions": "x"}))
    assert status_of(r) == (400, "BadRequest")
    r = client.simulate_delete(f"{NS}/d", params={"propagationPolicy": "Now"})
    assert status_of(r) == (422, "Invalid")
    assert r.json["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Now": '
        'supported values: "Foreground", "Background", "Orphan", "nil"'
    )
    assert client.simulate_get(f"{NS}/d").status_code == 200


def test_a_declared_length_over_the_limit_is_413_before_the_body_is_read(
    client: TestClient,
) -> None:
    r = client.simulate_post(
        NS, body=b"{}", headers={"Content-Type": "application/json", "Content-Length": "20971520"}
    )
    assert status_of(r) == (413, "RequestEntityTooLarge")


def test_a_warning_carrying_client_text_is_a_valid_header_value() -> None:
    header = warning_header('unknown field "a\nb\\ü"')
    assert header == '299 - "unknown field \\"a\ufffdb\\\\ü\\""'.encode().decode("latin-1")
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in header)


def test_a_chunked_body_cut_short_is_400(client: TestClient) -> None:
    r = client.simulate_post(
        NS,
        body=b"",
        headers={"Content-Type": "application/json"},
        extras={"wsgi.input": _Broken()},
    )
    assert status_of(r) == (400, "BadRequest")
    assert r.json["message"].startswith("the request body could not be read")


class _Broken:
    """A request body whose reading fails as gunicorn's does when the client stops sending."""

    def read(self, size: int = -1) -> bytes:
        raise OSError("No more data")

    readline = read

    def readlines(self, hint: int = -1) -> list[bytes]:
        raise OSError("No more data")

    def __iter__(self) -> _Broken:
        return self


class _FaultyStore(SQLiteStore):
    """A store whose reads fail: a server fault, not the client's."""

    def get(self, resource: str, namespace: str, name: str) -> Row | None:
        raise RuntimeError("the disk is on fire")


def test_a_server_fault_is_a_500_logged_with_the_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "s.db")
    app = create_app(
        Settings.from_env({"APISERVER_SQLITE_PATH": path}),
        store=_FaultyStore(path),
        authorizer=AllowAll(),
    )
    r = TestClient(app).simulate_get(f"{NS}/any")
    assert status_of(r) == (500, "InternalError")
    assert r.json["message"] == "Internal error occurred: RuntimeError"  # nothing more leaks
    logged = [rec for rec in caplog.records if rec.levelname == "ERROR"]
    assert logged and r.headers["x-request-id"] in logged[-1].getMessage()
    assert "the disk is on fire" in (logged[-1].exc_text or "")
