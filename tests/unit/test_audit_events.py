"""Audit events come out in kube's JSON shape, keeping what their level keeps, and every one
of them passes the ``audit.k8s.io/v1`` Event schema written from kube's types."""

from __future__ import annotations

import copy
import logging
import os
import uuid
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no py.typed, no stubs
import orjson
import pytest

from handlers.api.users import User
from proxy.audit.events import (
    AuditEvent,
    audit_id,
    micro_time,
    request_uri,
    source_ips,
    user_agent,
)
from proxy.audit.policy import STAGES, Level, RequestConfig
from proxy.requestinfo import RequestInfo, parse
from tests.support.auditschema import validate_event

RECEIVED = 1_700_000_000.123456
RECEIVED_TEXT = "2023-11-14T22:13:20.123456Z"
LATER = 1_700_000_001.5
LATER_TEXT = "2023-11-14T22:13:21.500000Z"

ALICE = User("alice", ("devs", "system:authenticated"), "u-1", {"scopes": ("a", "b")})
GET_THING = parse("GET", "/apis/example.com/v1/namespaces/ns/things/one", {})
CREATE_THING = parse("POST", "/apis/example.com/v1/namespaces/ns/things", {})
LIST_THINGS = parse("GET", "/apis/example.com/v1/things", {})
DISCOVERY = parse("GET", "/apis/example.com/v1", {})

MANAGED = [{"manager": "kubectl", "operation": "Update", "apiVersion": "example.com/v1"}]


def thing(name: str = "one") -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "resourceVersion": "42",
            "managedFields": copy.deepcopy(MANAGED),
        },
        "spec": {"size": 3},
    }


def event(
    level: Level,
    info: RequestInfo = GET_THING,
    *,
    omit: frozenset[str] = frozenset(),
    omit_managed_fields: bool = False,
    user: User = ALICE,
) -> AuditEvent:
    return AuditEvent(
        RequestConfig(level, omit, omit_managed_fields),
        audit_id="8f6b5e2c-0000-4000-8000-000000000001",
        user=user,
        info=info,
        request_uri=info.path,
        source_ips=["10.0.0.1", "127.0.0.1"],
        user_agent="kubectl/v1.30.0",
        received=RECEIVED,
    )


def complete(ev: AuditEvent) -> dict[str, Any]:
    out = ev.stage("ResponseComplete", LATER)
    assert out is not None
    validate_event(out)
    return out


def test_micro_time_is_utc_to_the_microsecond() -> None:
    assert micro_time(RECEIVED) == RECEIVED_TEXT
    assert micro_time(0) == "1970-01-01T00:00:00.000000Z"
    assert micro_time(LATER) == LATER_TEXT


def test_a_metadata_event_is_kubes_shape_field_for_field() -> None:
    received = event(Level.METADATA).stage("RequestReceived", LATER)
    assert received == {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "8f6b5e2c-0000-4000-8000-000000000001",
        "stage": "RequestReceived",
        "requestURI": "/apis/example.com/v1/namespaces/ns/things/one",
        "verb": "get",
        "user": {
            "username": "alice",
            "uid": "u-1",
            "groups": ["devs", "system:authenticated"],
            "extra": {"scopes": ["a", "b"]},
        },
        "sourceIPs": ["10.0.0.1", "127.0.0.1"],
        "userAgent": "kubectl/v1.30.0",
        "objectRef": {
            "resource": "things",
            "namespace": "ns",
            "name": "one",
            "apiGroup": "example.com",
            "apiVersion": "v1",
        },
        "requestReceivedTimestamp": RECEIVED_TEXT,
        "stageTimestamp": RECEIVED_TEXT,
    }
    validate_event(received)


def test_the_json_line_keeps_kubes_field_order() -> None:
    ev = event(Level.METADATA)
    ev.log_response_object(thing(), code=200)
    ev.add_annotation("authorization.k8s.io/decision", "allow")
    line = orjson.dumps(complete(ev)).decode()
    keys = [
        "kind",
        "apiVersion",
        "level",
        "auditID",
        "stage",
        "requestURI",
        "verb",
        "user",
        "sourceIPs",
        "userAgent",
        "objectRef",
        "responseStatus",
        "requestReceivedTimestamp",
        "stageTimestamp",
        "annotations",
    ]
    positions = [line.index(f'"{key}":') for key in keys]
    assert positions == sorted(positions)


def test_later_stages_carry_their_own_timestamp() -> None:
    out = complete(event(Level.METADATA))
    assert out["requestReceivedTimestamp"] == RECEIVED_TEXT
    assert out["stageTimestamp"] == LATER_TEXT


def test_empty_fields_are_left_out_as_kubes_omitempty_does() -> None:
    ev = AuditEvent(
        RequestConfig(Level.METADATA),
        audit_id="id",
        user=User("bob"),
        info=DISCOVERY,
        request_uri="/apis/example.com/v1",
        source_ips=[],
        user_agent="",
        received=RECEIVED,
    )
    out = ev.stage("RequestReceived")
    assert out is not None
    validate_event(out)
    assert out["user"] == {"username": "bob"}
    for absent in ("sourceIPs", "userAgent", "objectRef", "annotations", "responseStatus"):
        assert absent not in out


def test_a_non_resource_request_has_no_object_ref_and_the_methods_verb() -> None:
    out = event(Level.METADATA, DISCOVERY).stage("RequestReceived")
    assert out is not None
    assert "objectRef" not in out
    assert out["verb"] == "get"


def test_a_list_refers_to_its_resource_only() -> None:
    out = event(Level.METADATA, LIST_THINGS).stage("RequestReceived")
    assert out is not None
    assert out["objectRef"] == {"resource": "things", "apiGroup": "example.com", "apiVersion": "v1"}


def test_a_subresource_is_in_the_object_ref() -> None:
    info = parse("PUT", "/apis/example.com/v1/namespaces/ns/things/one/status", {})
    out = event(Level.METADATA, info).stage("RequestReceived")
    assert out is not None
    assert out["objectRef"]["subresource"] == "status"
    assert out["verb"] == "update"


def test_level_none_writes_nothing() -> None:
    ev = event(Level.NONE)
    ev.log_request_object(thing())
    ev.log_response_object(thing(), code=200)
    ev.add_annotation("k", "v")
    assert not ev.enabled
    assert [ev.stage(stage) for stage in STAGES] == [None] * 4
    assert ev.panicked(RuntimeError("boom")) is None


def test_omitted_stages_give_no_event() -> None:
    ev = event(Level.METADATA, omit=frozenset({"RequestReceived", "ResponseStarted"}))
    assert ev.stage("RequestReceived") is None
    assert ev.stage("ResponseStarted") is None
    assert ev.stage("ResponseComplete") is not None


def test_an_unknown_stage_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown audit stage"):
        event(Level.METADATA).stage("Done")


def test_the_request_object_completes_the_object_ref_at_metadata_but_is_not_kept() -> None:
    ev = event(Level.METADATA, CREATE_THING)
    ev.log_request_object(thing("new"))
    out = complete(ev)
    assert out["objectRef"] == {
        "resource": "things",
        "namespace": "ns",
        "name": "new",
        "uid": "uid-new",
        "apiGroup": "example.com",
        "apiVersion": "v1",
        "resourceVersion": "42",
    }
    assert "requestObject" not in out


def test_the_object_ref_keeps_what_the_url_named() -> None:
    ev = event(Level.METADATA)
    ev.log_request_object(thing("other"))
    assert complete(ev)["objectRef"]["name"] == "one"


def test_the_request_object_is_kept_from_level_request_as_it_was_logged() -> None:
    body = thing()
    ev = event(Level.REQUEST, CREATE_THING)
    ev.log_request_object(body)
    body["spec"]["size"] = 99  # admission changing the object later
    out = complete(ev)
    assert out["requestObject"] == thing()
    assert "responseObject" not in out


def test_managed_fields_are_omitted_from_a_copy_when_the_policy_says_so() -> None:
    body = thing()
    ev = event(Level.REQUEST, CREATE_THING, omit_managed_fields=True)
    ev.log_request_object(body)
    out = complete(ev)
    assert "managedFields" not in out["requestObject"]["metadata"]
    assert out["requestObject"]["metadata"]["uid"] == "uid-one"
    assert body["metadata"]["managedFields"] == MANAGED


def test_managed_fields_are_kept_otherwise() -> None:
    ev = event(Level.REQUEST, CREATE_THING)
    ev.log_request_object(thing())
    assert complete(ev)["requestObject"]["metadata"]["managedFields"] == MANAGED


def test_managed_fields_are_omitted_from_every_list_item_and_table_row() -> None:
    items: dict[str, Any] = {"apiVersion": "example.com/v1", "kind": "ThingList", "metadata": {}}
    items["items"] = [thing("a"), thing("b")]
    ev = event(Level.REQUEST_RESPONSE, LIST_THINGS, omit_managed_fields=True)
    ev.log_response_object(items, code=200)
    listed = complete(ev)["responseObject"]
    assert [i["metadata"].get("managedFields") for i in listed["items"]] == [None, None]
    assert items["items"][0]["metadata"]["managedFields"] == MANAGED

    table: dict[str, Any] = {"apiVersion": "meta.k8s.io/v1", "kind": "Table", "rows": []}
    table["rows"] = [{"cells": ["a"], "object": thing("a")}]
    ev = event(Level.REQUEST_RESPONSE, LIST_THINGS, omit_managed_fields=True)
    ev.log_response_object(table, code=200)
    row = complete(ev)["responseObject"]["rows"][0]
    assert "managedFields" not in row["object"]["metadata"]


def test_a_patch_is_kept_as_sent_from_level_request() -> None:
    patch = [{"op": "replace", "path": "/spec/size", "value": 4}]
    info = parse("PATCH", "/apis/example.com/v1/namespaces/ns/things/one", {})
    ev = event(Level.REQUEST, info)
    ev.log_request_patch(patch)
    assert complete(ev)["requestObject"] == patch
    ev = event(Level.METADATA, info)
    ev.log_request_patch(patch)
    assert "requestObject" not in complete(ev)


NOT_FOUND = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": 'things.example.com "one" not found',
    "reason": "NotFound",
    "details": {"name": "one", "group": "example.com", "kind": "things"},
    "code": 404,
}


@pytest.mark.parametrize("level", [Level.METADATA, Level.REQUEST])
def test_a_status_response_gives_its_bounded_fields_below_request_response(level: Level) -> None:
    ev = event(level)
    ev.log_response_object(NOT_FOUND, code=404)
    out = complete(ev)
    assert out["responseStatus"] == {
        "metadata": {},
        "status": "Failure",
        "message": 'things.example.com "one" not found',
        "reason": "NotFound",
        "details": {"name": "one", "group": "example.com", "kind": "things"},
        "code": 404,
    }
    assert "responseObject" not in out


@pytest.mark.parametrize("level", [Level.METADATA, Level.REQUEST])
def test_another_response_gives_only_its_code_below_request_response(level: Level) -> None:
    ev = event(level)
    ev.log_response_object(thing(), code=200)
    out = complete(ev)
    assert out["responseStatus"] == {"metadata": {}, "code": 200}
    assert "responseObject" not in out


def test_request_response_keeps_the_response_body_too() -> None:
    ev = event(Level.REQUEST_RESPONSE, CREATE_THING)
    ev.log_request_object(thing())
    ev.log_response_object(thing(), code=201)
    out = complete(ev)
    assert out["requestObject"] == thing()
    assert out["responseObject"] == thing()
    assert out["responseStatus"] == {"metadata": {}, "code": 201}

    ev = event(Level.REQUEST_RESPONSE)
    ev.log_response_object(NOT_FOUND, code=404)
    out = complete(ev)
    assert out["responseObject"] == NOT_FOUND
    assert out["responseStatus"]["reason"] == "NotFound"


def test_the_response_code_alone_makes_the_response_status() -> None:
    ev = event(Level.METADATA, parse("GET", "/apis/example.com/v1/things", {"watch": "1"}))
    ev.log_response_code(200)
    started = ev.stage("ResponseStarted", LATER)
    assert started is not None
    validate_event(started)
    assert started["responseStatus"] == {"metadata": {}, "code": 200}


def test_a_request_that_never_answered_completes_as_kube_fakes_it() -> None:
    assert complete(event(Level.METADATA))["responseStatus"] == {
        "metadata": {},
        "status": "Success",
        "message": "Connection closed early",
        "code": 200,
    }


def test_a_panic_is_a_500_with_kubes_message() -> None:
    ev = event(Level.METADATA)
    out = ev.panicked(RuntimeError("index out of range"), LATER)
    assert out is not None
    validate_event(out)
    assert out["stage"] == "Panic"
    assert out["stageTimestamp"] == LATER_TEXT
    assert out["responseStatus"] == {
        "metadata": {},
        "status": "Failure",
        "message": "APIServer panic'd: index out of range",
        "reason": "InternalError",
        "code": 500,
    }


def test_annotations_keep_the_first_value_and_are_sorted(caplog: pytest.LogCaptureFixture) -> None:
    ev = event(Level.METADATA)
    ev.add_annotation("z.example.com/b", "1")
    ev.add_annotation("a.example.com/a", "2")
    with caplog.at_level(logging.WARNING, logger="apiserver.audit"):
        ev.add_annotation("z.example.com/b", "3")
    annotations = complete(ev)["annotations"]
    assert annotations == {"a.example.com/a": "2", "z.example.com/b": "1"}
    assert list(annotations) == ["a.example.com/a", "z.example.com/b"]
    assert "it has already been set to '1'" in caplog.text


@pytest.mark.parametrize("level", [Level.METADATA, Level.REQUEST, Level.REQUEST_RESPONSE])
@pytest.mark.parametrize("stage", STAGES)
def test_every_event_passes_the_schema(level: Level, stage: str) -> None:
    ev = event(level, CREATE_THING)
    ev.log_request_object(thing())
    ev.log_response_object(thing(), code=201)
    ev.add_annotation("k", "v")
    out = ev.panicked("boom") if stage == "Panic" else ev.stage(stage)
    assert out is not None
    validate_event(orjson.loads(orjson.dumps(out)))


@pytest.mark.parametrize(
    "broken",
    [
        {"kind": "Eve"},
        {"level": "All"},
        {"user": {"name": "x"}},
        {"objectRef": {"name": ""}},
        {"stageTimestamp": "2023-11-14T22:13:20Z"},
        {"responseStatus": {"metadata": {}, "code": 200, "extra": 1}},
        {"impersonatedUser": {"username": "x", "other": 1}},
        {"surprise": True},
    ],
)
def test_the_schema_refuses_what_kube_could_not_write(broken: dict[str, Any]) -> None:
    out = complete(event(Level.METADATA))
    with pytest.raises(jsonschema.ValidationError):
        validate_event({**out, **broken})


@pytest.mark.parametrize(
    "required",
    [
        "kind",
        "apiVersion",
        "level",
        "auditID",
        "stage",
        "requestURI",
        "verb",
        "user",
        "requestReceivedTimestamp",
        "stageTimestamp",
    ],
)
def test_the_schema_requires_what_kube_always_writes(required: str) -> None:
    out = complete(event(Level.METADATA))
    with pytest.raises(jsonschema.ValidationError, match=f"'{required}' is a required property"):
        validate_event({k: v for k, v in out.items() if k != required})


# kube's TestSourceIPs (apimachinery util/net), case for case.
@pytest.mark.parametrize(
    ("real_ip", "forwarded_for", "remote", "expected"),
    [
        ("", "", "", []),
        ("", "", "1.2.3.4:555", ["1.2.3.4"]),
        ("", "", "1.2.3.4", ["1.2.3.4"]),
        ("", " ", "1.2.3.4", ["1.2.3.4"]),
        ("", "garbage garbage values!", "1.2.3.4", ["1.2.3.4"]),
        ("", "garbage garbage values!,4.5.6.7", "1.2.3.4", ["4.5.6.7", "1.2.3.4"]),
        (
            "",
            "120.120.120.126,2.2.2.2,4.5.6.7",
            "1.2.3.4",
            ["120.120.120.126", "2.2.2.2", "4.5.6.7", "1.2.3.4"],
        ),
        ("", "2.2.2.2,1.2.3.4", "1.2.3.4", ["2.2.2.2", "1.2.3.4"]),
        ("garbage, just garbage!", "", "1.2.3.4", ["1.2.3.4"]),
        ("garbage, just garbage!", "2.2.2.2", "1.2.3.4", ["2.2.2.2", "1.2.3.4"]),
        ("2.2.2.2", "", "1.2.3.4", ["2.2.2.2", "1.2.3.4"]),
        ("1.2.3.4", "", "1.2.3.4", ["1.2.3.4"]),
        (
            "2.2.2.2",
            "120.120.120.126,4.5.6.7",
            "1.2.3.4",
            ["120.120.120.126", "4.5.6.7", "2.2.2.2", "1.2.3.4"],
        ),
        (
            "2.2.2.2",
            "120.120.120.126,2.2.2.2,4.5.6.7",
            "1.2.3.4",
            ["120.120.120.126", "2.2.2.2", "4.5.6.7", "1.2.3.4"],
        ),
        ("1.2.3.4", "1.2.3.4", "1.2.3.4", ["1.2.3.4"]),
        (
            "abcd:ef01:2345:6789:abcd:ef01:2345:6789",
            "aaaa:bbbb:cccc:dddd:eeee:ffff:0:1111,0:1111:2222:3333:4444:5555:6666:7777",
            "aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa",
            [
                "aaaa:bbbb:cccc:dddd:eeee:ffff:0:1111",
                "0:1111:2222:3333:4444:5555:6666:7777",
                "abcd:ef01:2345:6789:abcd:ef01:2345:6789",
                "aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa",
            ],
        ),
        (
            "",
            "aaaa:bbbb:cccc:dddd:eeee:ffff:0:1111,1.2.3.4",
            "0:0:0:0:0:ffff:102:304",
            ["aaaa:bbbb:cccc:dddd:eeee:ffff:0:1111", "1.2.3.4"],
        ),
        ("", "", "[::1]:8443", ["::1"]),
        ("", "", "1::2:3", ["1::2:3"]),
    ],
)
def test_source_ips_as_kube_lists_them(
    real_ip: str, forwarded_for: str, remote: str, expected: list[str]
) -> None:
    environ = {"REMOTE_ADDR": remote}
    if real_ip:
        environ["HTTP_X_REAL_IP"] = real_ip
    if forwarded_for:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded_for
    assert source_ips(environ) == expected


def test_the_request_uri_is_the_path_and_query_as_sent() -> None:
    assert request_uri({"RAW_URI": "/apis/g/v1/things?limit=5"}) == "/apis/g/v1/things?limit=5"
    assert request_uri({"RAW_URI": "https://h:6443/apis?x=1"}) == "/apis?x=1"
    environ = {"PATH_INFO": "/apis/g/v1/a b", "QUERY_STRING": "watch=1"}
    assert request_uri(environ) == "/apis/g/v1/a%20b?watch=1"
    assert request_uri({"PATH_INFO": "/healthz"}) == "/healthz"


def test_the_audit_id_is_the_callers_or_a_new_uuid() -> None:
    assert audit_id({"HTTP_AUDIT_ID": "from-the-aggregator"}) == "from-the-aggregator"
    fresh = audit_id({})
    assert uuid.UUID(fresh).version == 4 and str(uuid.UUID(fresh)) == fresh
    assert fresh != audit_id({})
    long = "x" * 257  # an ID every log line and response would carry: replaced
    assert audit_id({"HTTP_AUDIT_ID": long}) != long
    assert audit_id({"HTTP_AUDIT_ID": "y" * 256}) == "y" * 256


def test_a_long_user_agent_is_truncated_as_kube_does() -> None:
    assert user_agent({"HTTP_USER_AGENT": "kubectl"}) == "kubectl"
    long = user_agent({"HTTP_USER_AGENT": "x" * 2000})
    assert long == "x" * 1024 + "...TRUNCATED"
    assert user_agent({}) == ""


def test_a_forked_worker_makes_audit_ids_of_its_own() -> None:
    """The ids come from ``random``, which a forked child reseeds: two workers forked from one
    master never repeat each other's ids."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(write, ",".join(audit_id({}) for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read, "rb") as answered:
        theirs = set(answered.read().decode().split(","))
    ours = {audit_id({}) for _ in range(100)}
    assert len(theirs) == len(ours) == 100
    assert not theirs & ours
