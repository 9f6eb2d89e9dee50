"""The fake cluster's own patches (``tests.fakes.patches``): RFC 7386 merge patch, JSON patch
through ``jsonpatch``, the simple apply, and kube's 400, 415 and 422 for bad ones."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.fakes.errors import StatusError
from tests.fakes.patches import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    check_media_type,
    merge_patch,
    patched,
)

TASK: dict[str, Any] = {
    "metadata": {"name": "a", "labels": {"tier": "web", "track": "stable"}, "finalizers": ["f"]},
    "spec": {"priority": 1, "steps": ["x", "y"], "owner": {"team": "t", "person": "p"}},
}


def refused(code: int, work: Any, *args: Any, **kwargs: Any) -> StatusError:
    with pytest.raises(StatusError) as caught:
        work(*args, **kwargs)
    assert caught.value.code == code
    return caught.value


# -- merge patch ----------------------------------------------------------------------------


def test_null_deletes_a_member_and_a_missing_one_is_no_error() -> None:
    merged = merge_patch(TASK, {"metadata": {"finalizers": None, "absent": None}})
    assert "finalizers" not in merged["metadata"] and "absent" not in merged["metadata"]
    assert merged["metadata"]["labels"] == TASK["metadata"]["labels"]


def test_objects_merge_at_every_depth() -> None:
    merged = merge_patch(
        TASK, {"metadata": {"labels": {"tier": "db", "track": None, "new": "1"}}, "status": {}}
    )
    assert merged["metadata"] == {
        "name": "a",
        "labels": {"tier": "db", "new": "1"},
        "finalizers": ["f"],
    }
    assert merged["spec"] == TASK["spec"] and merged["status"] == {}
    deeper = merge_patch(TASK, {"spec": {"owner": {"person": "q"}}})
    assert deeper["spec"]["owner"] == {"team": "t", "person": "q"}


def test_arrays_and_scalars_replace_whole() -> None:
    merged = merge_patch(TASK, {"spec": {"steps": ["z"], "priority": "high"}})
    assert merged["spec"]["steps"] == ["z"] and merged["spec"]["priority"] == "high"
    assert merge_patch(TASK, {"spec": {"owner": "nobody"}})["spec"]["owner"] == "nobody"


def test_an_object_replacing_a_scalar_loses_its_nulls() -> None:
    """RFC 7386's own example: the patch's object merges into an empty one."""
    assert merge_patch({"a": "b"}, {"a": {"c": "d", "e": None}}) == {"a": {"c": "d"}}


@pytest.mark.parametrize(
    ("target", "patch", "result"),  # RFC 7386 appendix A, a few of its cases
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_rfc_7386_examples(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_merge_patch_changes_neither_argument() -> None:
    before, patch = copy.deepcopy(TASK), {"metadata": {"labels": {"tier": None}}}
    merge_patch(TASK, patch)
    assert before == TASK and patch == {"metadata": {"labels": {"tier": None}}}


# -- patched: by media type -----------------------------------------------------------------


def test_merge_strategic_and_apply_bodies_merge() -> None:
    body = {"metadata": {"labels": {"tier": None}}}
    for media_type in (MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH):
        result = patched(media_type, copy.deepcopy(TASK), body, strategic=True)
        assert result["metadata"]["labels"] == {"track": "stable"}, media_type


def test_json_patch_operations_apply_in_order() -> None:
    operations = [
        {"op": "add", "path": "/metadata/labels/x", "value": "y"},
        {"op": "remove", "path": "/metadata/finalizers"},
        {"op": "replace", "path": "/spec/steps/0", "value": "w"},
        {"op": "test", "path": "/spec/priority", "value": 1},
    ]
    result = patched(JSON_PATCH, copy.deepcopy(TASK), operations, strategic=False)
    assert result["metadata"] == {
        "name": "a",
        "labels": {"tier": "web", "track": "stable", "x": "y"},
    }
    assert result["spec"]["steps"] == ["w", "y"]


def test_json_patch_that_does_not_apply_is_422_and_leaves_the_document() -> None:
    document = copy.deepcopy(TASK)
    failed_test = [{"op": "test", "path": "/spec/priority", "value": 2}]
    assert refused(422, patched, JSON_PATCH, document, failed_test, strategic=False).reason == (
        "Invalid"
    )
    missing = [{"op": "remove", "path": "/spec/nothing"}]
    refused(422, patched, JSON_PATCH, document, missing, strategic=False)
    assert document == TASK


@pytest.mark.parametrize(
    ("media_type", "body"),
    [
        (JSON_PATCH, {"op": "add"}),  # not an array
        (JSON_PATCH, [{"op": "frobnicate", "path": "/a"}]),
        (JSON_PATCH, [{"path": "/a"}]),
        (MERGE_PATCH, ["a"]),
        (MERGE_PATCH, "text"),
        (APPLY_PATCH, "kind: Task"),  # YAML that is no JSON arrives as text
    ],
)
def test_malformed_bodies_are_400(media_type: str, body: Any) -> None:
    error = refused(400, patched, media_type, copy.deepcopy(TASK), body, strategic=True)
    assert error.reason == "BadRequest"


def test_media_types_a_resource_does_not_take_are_415_naming_those_it_takes() -> None:
    custom = refused(415, check_media_type, STRATEGIC_MERGE_PATCH, strategic=False)
    assert custom.reason == "UnsupportedMediaType"
    assert custom.message == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    core = refused(415, check_media_type, "application/json", strategic=True)
    assert core.message.endswith(
        "application/json-patch+json, application/merge-patch+json, "
        "application/strategic-merge-patch+json, application/apply-patch+yaml"
    )
    refused(415, patched, "", copy.deepcopy(TASK), {}, strategic=True)
    check_media_type(STRATEGIC_MERGE_PATCH, strategic=True)  # no error
