"""Scenarios of structured-merge-diff's own tests replayed on a CustomTask: the same sequence
of applies and updates must leave the same object and the same field sets as kube's.

From sigs.k8s.io/structured-merge-diff merge/set_test.go (TestUpdateSet: a list of strings
with ``elementRelationship: associative``, here ``metadata.finalizers``) and
merge/multiple_appliers_test.go (TestMultipleAppliersSet's scalar cases, ``struct.name`` and
``struct.scalarField`` here ``spec.priority`` and ``spec.details``; one version, so the
versioned cases become their single-version equivalents).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

import handlers.customtasks
from handlers.api import fieldsets
from handlers.api.errors import ApiError
from handlers.owned.managedfields import Operation

KIND = handlers.customtasks.KIND
RESET = KIND.strategy(None).reset_fields

Step = tuple[str, str, dict[str, Any]]


def finalizers(*items: str) -> dict[str, Any]:
    return {"metadata": {"name": "t", "finalizers": list(items)}}


def spec(**fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "t"}, "spec": fields}


def play(steps: list[Step]) -> dict[str, Any]:
    """Each step applied (``apply``) or written whole (``update``) by its manager."""
    obj: dict[str, Any] | None = None
    for operation, manager, body in steps:
        doer = Operation(KIND.shape, manager, KIND.api_version, "", RESET)
        config = {"apiVersion": KIND.api_version, "kind": KIND.kind, **copy.deepcopy(body)}
        if operation == "apply":
            obj = doer.applied(obj, config, force=False)
        else:
            if obj is not None and "managedFields" in obj["metadata"]:
                config["metadata"]["managedFields"] = obj["metadata"]["managedFields"]
            doer.updated(obj, config)
            obj = config
    assert obj is not None
    return obj


def owned(obj: dict[str, Any]) -> dict[str, set[str]]:
    return {
        entry["manager"]: {
            fieldsets.path_string(p) for p in fieldsets.from_fields_v1(entry["fieldsV1"])
        }
        for entry in obj["metadata"].get("managedFields", [])
    }


def f(*values: str) -> set[str]:
    return {f'.metadata.finalizers[="{v}"]' for v in values}


SETS = {
    "apply_twice": (
        [("apply", "default", finalizers("a", "c")), ("apply", "default", finalizers(*"abcd"))],
        ["a", "b", "c", "d"],
        {"default": f(*"abcd")},
    ),
    "apply_update_apply_no_overlap": (
        [
            ("apply", "default", finalizers("a", "c")),
            ("update", "controller", finalizers(*"abcd")),
            ("apply", "default", finalizers("a", "aprime", "c", "cprime")),
        ],
        ["a", "b", "aprime", "c", "d", "cprime"],
        {"default": f("a", "aprime", "c", "cprime"), "controller": f("b", "d")},
    ),
    "apply_update_apply_with_overlap": (
        [
            ("apply", "default", finalizers("a", "c")),
            ("update", "controller", finalizers(*"abcd")),
            ("apply", "default", finalizers("a", "b", "c")),
        ],
        ["a", "b", "c", "d"],
        {"default": f("a", "b", "c"), "controller": f("b", "d")},
    ),
    "apply_twice_reorder": (
        [("apply", "default", finalizers(*"abcd")), ("apply", "default", finalizers(*"adcb"))],
        ["a", "d", "c", "b"],
        {"default": f(*"abcd")},
    ),
    "apply_update_apply_reorder": (
        [
            ("apply", "default", finalizers(*"abcd")),
            ("update", "controller", finalizers(*"adcb")),  # reordering owns nothing
            ("apply", "default", finalizers(*"abcd")),
        ],
        ["a", "b", "c", "d"],
        {"default": f(*"abcd")},
    ),
    "apply_twice_remove": (
        [("apply", "default", finalizers(*"abcd")), ("apply", "default", finalizers("a", "c"))],
        ["a", "c"],
        {"default": f("a", "c")},
    ),
}


@pytest.mark.parametrize("name", SETS)
def test_kubes_set_scenarios(name: str) -> None:
    steps, items, managers = SETS[name]
    obj = play(steps)
    assert obj["metadata"]["finalizers"] == items
    assert owned(obj) == managers


def test_unset_scalar_sole_owner() -> None:
    obj = play(
        [
            ("apply", "apply-one", spec(priority=1, details="a")),
            ("apply", "apply-one", spec(priority=1)),
        ]
    )
    assert obj["spec"] == {"priority": 1}
    assert owned(obj) == {"apply-one": {".spec.priority"}}


def test_unset_scalar_shared_with_applier() -> None:
    obj = play(
        [
            ("apply", "apply-one", spec(priority=1, details="a")),
            ("apply", "apply-two", spec(details="a")),
            ("apply", "apply-one", spec(priority=1)),
        ]
    )
    assert obj["spec"] == {"priority": 1, "details": "a"}
    assert owned(obj) == {"apply-one": {".spec.priority"}, "apply-two": {".spec.details"}}


def test_unset_scalar_shared_with_updater() -> None:
    obj = play(
        [
            ("update", "updater", spec(priority=1, details="a")),
            ("apply", "applier", spec(priority=1, details="a")),
            ("apply", "applier", spec(priority=1)),
        ]
    )
    assert obj["spec"] == {"priority": 1, "details": "a"}
    assert owned(obj) == {
        "updater": {".spec", ".spec.priority", ".spec.details"},
        "applier": {".spec.priority"},
    }


def test_updater_claims_field() -> None:
    obj = play(
        [
            ("apply", "applier", spec(priority=1, details="a")),
            ("update", "updater", spec(priority=1, details="b")),
        ]
    )
    assert owned(obj) == {"updater": {".spec.details"}, "applier": {".spec.priority"}}


def test_change_value_yes_conflict() -> None:
    with pytest.raises(ApiError) as caught:
        play(
            [
                ("apply", "apply-one", spec(priority=1, details="a")),
                ("apply", "apply-two", spec(details="b")),
            ]
        )
    assert caught.value.message == (
        'Apply failed with 1 conflict: conflict with "apply-one": .spec.details'
    )
