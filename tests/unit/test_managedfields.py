"""managedFields as kube's field manager keeps them, and server-side apply's merge by
ownership, on a CustomTask's shape (read from its OpenAPI schema). Expected entries are
written as kube writes them for a custom resource; conflict messages are replayed from
k8s.io/apimachinery's managedfields tests."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import handlers.customtasks
from handlers.api import fieldsets, shapes
from handlers.api.errors import ApiError
from handlers.owned import managedfields
from handlers.owned.managedfields import Entry, Operation

KIND = handlers.customtasks.KIND
GV = KIND.api_version
MAIN = KIND.strategy(None).reset_fields
STATUS = KIND.strategy("status").reset_fields


def op(manager: str, subresource: str = "") -> Operation:
    return Operation(KIND.shape, manager, GV, subresource, STATUS if subresource else MAIN)


def task(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": GV,
        "kind": "CustomTask",
        "metadata": {"name": "t", "namespace": "default"},
        "spec": {"priority": 1, "deadline": "2025-01-01T00:00:00Z", **spec},
    }


def entries(obj: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (e["manager"], e["operation"], e.get("subresource", ""), e["fieldsV1"])
        for e in obj["metadata"].get("managedFields", [])
    ]


def created(manager: str, obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    op(manager).updated(None, obj)
    return obj


def test_a_create_owns_every_field_it_set_with_dots_for_what_it_added_whole() -> None:
    obj = task(taskState="Pending")
    obj["metadata"]["labels"] = {"team": "a"}
    obj = created("kubectl-create", obj)
    assert entries(obj) == [
        (
            "kubectl-create",
            "Update",
            "",
            {
                "f:metadata": {"f:labels": {".": {}, "f:team": {}}},
                "f:spec": {".": {}, "f:deadline": {}, "f:priority": {}, "f:taskState": {}},
            },
        )
    ]
    entry = obj["metadata"]["managedFields"][0]
    assert list(entry) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]
    assert entry["apiVersion"] == GV and entry["fieldsType"] == "FieldsV1"


def test_an_update_takes_what_it_changes_and_merges_into_its_own_entry() -> None:
    live = created("creator", task(details="x"))
    new = copy.deepcopy(live)
    new["spec"]["priority"] = 5
    op("kubectl-edit").updated(live, new)
    assert entries(new) == [
        (
            "creator",
            "Update",
            "",
            {"f:spec": {".": {}, "f:deadline": {}, "f:details": {}}},
        ),
        ("kubectl-edit", "Update", "", {"f:spec": {"f:priority": {}}}),
    ]
    again = copy.deepcopy(new)
    again["spec"]["details"] = "y"
    op("kubectl-edit").updated(new, again)
    assert entries(again)[1] == (
        "kubectl-edit",
        "Update",
        "",
        {"f:spec": {"f:details": {}, "f:priority": {}}},
    )


def test_an_update_that_changes_nothing_keeps_the_entries_and_their_times() -> None:
    live = created("creator", task())
    live["metadata"]["managedFields"][0]["time"] = "2001-02-03T04:05:06Z"
    new = copy.deepcopy(live)
    op("someone").updated(live, new)
    assert new["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_an_object_that_tracks_nothing_stays_so_on_update() -> None:
    live = task()
    new = task(priority=2)
    op("kubectl-edit").updated(live, new)
    assert "managedFields" not in new["metadata"]


@pytest.mark.parametrize("reset", [[], [{}]])
def test_managed_fields_reset_by_an_empty_list_or_one_empty_entry(reset: list[Any]) -> None:
    live = created("creator", task())
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = reset
    op("resetter").updated(live, new)
    assert "managedFields" not in new["metadata"]


def test_managed_fields_given_in_a_write_are_honoured() -> None:
    live = created("creator", task())
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"][0]["manager"] = "renamed"
    op("writer").updated(live, new)
    assert [e[0] for e in entries(new)] == ["renamed"]


def test_the_status_subresource_owns_only_status_and_ignores_given_managers() -> None:
    live = created("creator", task())
    new = copy.deepcopy(live)
    new["status"] = {"phase": "Running", "conditions": [{"type": "Ready"}]}
    new["metadata"]["labels"] = {"sneaky": "yes"}
    new["metadata"]["managedFields"] = [{"manager": "forged", "operation": "Apply"}]
    op("controller", "status").updated(live, new)
    by_manager = {e[0]: e for e in entries(new)}
    assert by_manager["controller"] == (
        "controller",
        "Update",
        "status",
        {"f:status": {".": {}, "f:conditions": {}, "f:phase": {}}},
    )
    assert sorted(by_manager) == ["controller", "creator"]


def test_the_main_resource_never_owns_status() -> None:
    obj = task()
    obj["status"] = {"phase": "x"}
    obj = created("creator", obj)
    assert "f:status" not in obj["metadata"]["managedFields"][0]["fieldsV1"]


def test_update_managers_beyond_ten_merge_into_ancient_changes() -> None:
    obj = created("m00", task())
    for i in range(1, 12):
        for entry in obj["metadata"]["managedFields"]:  # distinct times, oldest first
            entry["time"] = (
                entry.get("time")
                if entry["manager"] != f"m{i - 1:02d}"
                else (f"2001-01-01T00:00:{i:02d}Z")
            )
        new = copy.deepcopy(obj)
        new["metadata"].setdefault("labels", {})[f"l{i}"] = "v"
        op(f"m{i:02d}").updated(obj, new)
        obj = new
    managers = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(managers) == 10
    assert "ancient-changes" in managers
    assert "m00" not in managers and "m01" not in managers


# server-side apply


def applied(
    manager: str, live: dict[str, Any] | None, config: dict[str, Any], force: bool = False
) -> dict[str, Any]:
    return op(manager).applied(live, config, force=force)


def test_apply_creates_owning_exactly_its_configuration() -> None:
    obj = applied("flux", None, task(details="d"))
    assert entries(obj) == [
        (
            "flux",
            "Apply",
            "",
            {"f:spec": {"f:deadline": {}, "f:details": {}, "f:priority": {}}},
        )
    ]


def test_reapply_removes_what_it_no_longer_applies_item_by_item() -> None:
    config = task(details="d")
    config["metadata"]["labels"] = {"team": "a", "tier": "x"}
    config["metadata"]["finalizers"] = ["a/one", "a/two"]
    obj = applied("flux", None, config)
    smaller = task()
    smaller["metadata"]["labels"] = {"team": "a"}
    smaller["metadata"]["finalizers"] = ["a/two"]
    obj = applied("flux", obj, smaller)
    assert obj["metadata"]["labels"] == {"team": "a"}
    assert obj["metadata"]["finalizers"] == ["a/two"]
    assert "details" not in obj["spec"]
    assert entries(obj)[0][3] == {
        "f:metadata": {"f:finalizers": {'v:"a/two"': {}}, "f:labels": {"f:team": {}}},
        "f:spec": {"f:deadline": {}, "f:priority": {}},
    }


def test_a_field_another_manager_still_owns_is_not_removed() -> None:
    obj = applied("flux", None, task(details="d"))
    obj = applied("other", obj, task(details="d"))  # same value: shared, no conflict
    obj = applied("flux", obj, task())
    assert obj["spec"]["details"] == "d"


def test_a_different_value_owned_by_another_applier_conflicts() -> None:
    obj = applied("other", None, task(priority=4))
    with pytest.raises(ApiError) as caught:
        applied("mine", obj, task(priority=3))
    error = caught.value
    assert (error.code, error.reason) == (409, "Conflict")
    assert error.message == 'Apply failed with 1 conflict: conflict with "other": .spec.priority'
    assert error.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "other"',
                "field": ".spec.priority",
            }
        ]
    }


def test_force_takes_ownership() -> None:
    obj = applied("other", None, task(priority=4))
    obj = applied("mine", obj, task(priority=3), force=True)
    assert obj["spec"]["priority"] == 3
    owners = {e[0]: e[3]["f:spec"] for e in entries(obj)}
    assert "f:priority" in owners["mine"] and "f:priority" not in owners["other"]


def test_an_update_manager_is_named_with_its_version_in_a_conflict() -> None:
    obj = applied("flux", None, task(priority=4))
    edited = copy.deepcopy(obj)
    edited["spec"]["priority"] = 5
    op("kubectl-edit").updated(obj, edited)
    with pytest.raises(ApiError) as caught:
        applied("flux", edited, task(priority=4))
    assert caught.value.message == (
        f'Apply failed with 1 conflict: conflict with "kubectl-edit" using {GV}: .spec.priority'
    )


def test_applying_an_object_that_tracked_nothing_records_before_first_apply() -> None:
    live = task(details="old")
    live["metadata"]["uid"] = "u"
    obj = applied("flux", live, task(details="new"), force=True)
    managers = [(e[0], e[1]) for e in entries(obj)]
    assert managers == [("flux", "Apply"), ("before-first-apply", "Update")]


def test_kubectl_takes_over_what_its_client_side_apply_set() -> None:
    config = task(details="d")
    annotation = orjson.dumps(config).decode()
    live = copy.deepcopy(config)
    live["metadata"]["annotations"] = {managedfields.LAST_APPLIED: annotation}
    live = created("kubectl-client-side-apply", live)
    obj = applied("kubectl", live, task(details="d", priority=2))
    assert obj["spec"]["priority"] == 2
    with pytest.raises(ApiError):  # any other manager conflicts
        applied("flux", live, task(details="d", priority=2))


def test_managed_fields_in_an_applied_configuration_are_refused() -> None:
    config = task()
    config["metadata"]["managedFields"] = []
    with pytest.raises(ApiError) as caught:
        applied("flux", None, config)
    assert (caught.value.code, caught.value.message) == (400, "metadata.managedFields must be nil")


# kube's conflict messages, replayed from k8s.io/apimachinery
# pkg/util/managedfields/internal/conflict_test.go (TestNewConflictError)


def test_kubes_recorded_conflict_messages() -> None:
    foo = Entry("foo", "Update", "v1", "", frozenset(), "2001-02-03T04:05:06Z")
    one = managedfields.conflict_error({foo.identity: foo_with(foo, ("f:spec", "f:replicas"))})
    assert one.message == (
        'Apply failed with 1 conflict: conflict with "foo" using v1 at 2001-02-03T04:05:06Z: '
        ".spec.replicas"
    )
    bar = Entry("bar", "Apply", "", "", frozenset({("f:metadata", "f:labels", "f:app")}))
    two = managedfields.conflict_error(
        {foo.identity: foo_with(foo, ("f:spec", "f:replicas")), bar.identity: bar}
    )
    assert two.message == (
        'Apply failed with 2 conflicts: conflicts with "bar":\n'
        "- .metadata.labels.app\n"
        'conflicts with "foo" using v1 at 2001-02-03T04:05:06Z:\n'
        "- .spec.replicas"
    )
    scale = Entry(
        "foo",
        "Update",
        "v1",
        "scale",
        frozenset({("f:spec", "f:replicas")}),
        "2001-02-03T04:05:06Z",
    )
    assert managedfields.conflict_error({scale.identity: scale}).message == (
        'Apply failed with 1 conflict: conflict with "foo" with subresource "scale" using v1 at '
        "2001-02-03T04:05:06Z: .spec.replicas"
    )


def foo_with(entry: Entry, path: tuple[str, ...]) -> Entry:
    return Entry(
        entry.manager, entry.operation, entry.api_version, "", frozenset({path}), entry.time
    )


# properties of apply over random configurations

LABELS = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["1", "2"]))
FINALIZERS = st.lists(st.sampled_from(["x/1", "x/2", "x/3"]), unique=True)
SPECS = st.fixed_dictionaries(
    {"priority": st.integers(0, 10)},
    optional={"details": st.sampled_from(["p", "q"]), "taskState": st.just("Pending")},
)


def configuration(labels: dict[str, str], finalizers: list[str], spec: dict[str, Any]) -> Any:
    obj = task(**spec)
    obj["metadata"].update(labels=labels, finalizers=finalizers)
    return obj


CONFIGS = st.builds(configuration, LABELS, FINALIZERS, SPECS)


@settings(max_examples=150, deadline=None)
@given(CONFIGS, CONFIGS)
def test_one_applier_ends_with_exactly_its_last_configuration(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    obj = applied("solo", applied("solo", None, first), second)
    assert obj["metadata"].get("labels", {}) == second["metadata"]["labels"]
    assert obj["metadata"].get("finalizers", []) == second["metadata"]["finalizers"]
    assert obj["spec"] == second["spec"]
    owned = fieldsets.from_fields_v1(obj["metadata"]["managedFields"][0]["fieldsV1"])
    assert owned == shapes.field_set(KIND.shape, second) - managedfields._STRIPPED


@settings(max_examples=150, deadline=None)
@given(CONFIGS, CONFIGS)
def test_a_second_applier_conflicts_exactly_on_the_fields_it_would_change(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    obj = applied("one", None, first)
    mine = shapes.field_set(KIND.shape, second)
    theirs = shapes.field_set(KIND.shape, first)
    changed = shapes.compare(KIND.shape, obj, shapes.merge(KIND.shape, obj, second)).changed()
    expected = (mine & theirs & changed) - managedfields._STRIPPED
    try:
        applied("two", obj, second)
    except ApiError as ex:
        fields = {c["field"] for c in ex.details["causes"]}
        assert fields == {fieldsets.path_string(p) for p in expected}
    else:
        assert not expected
