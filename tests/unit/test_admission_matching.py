"""What a policy's ``matchConstraints`` and a binding's ``matchResources`` match (R12), as
k8s.io/apiserver's admission matching reads them: ``resources`` with ``*`` (resources, not
subresources), ``*/*`` (all of both), ``r/s``, ``r/*`` (a resource and its subresources)
and ``*/s``; operations, groups, versions, scope
and resourceNames; exclusions; namespace and object label selectors (an object matches when
its new or its old labels do)."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.admission.matching import Match, Rule, selects
from handlers.api.admission import CREATE, DELETE, UPDATE, Attributes

GROUP = "search.task.example.example.com"


def attributes(
    operation: str = CREATE,
    resource: str = "customtasks",
    subresource: str = "",
    namespace: str = "team",
    name: str = "t",
    labels: dict[str, str] | None = None,
    old_labels: dict[str, str] | None = None,
) -> Attributes:
    def obj(with_labels: dict[str, str] | None) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": with_labels or {}}}

    return Attributes(
        operation,
        GROUP,
        "v1",
        "CustomTask",
        resource,
        subresource,
        namespace,
        name,
        None if operation == DELETE else obj(labels),
        None if operation == CREATE else obj(old_labels),
        None,
    )


def rule_matches(rule: dict[str, Any], attributes: Attributes) -> bool:
    return Rule.of(rule).matches(attributes)


def match_of(
    match: dict[str, Any] | None,
    attributes: Attributes,
    namespace: dict[str, Any] | None,
    *,
    rules_required: bool,
) -> bool:
    return Match.of(match, rules_required=rules_required).matches(attributes, namespace)


def rule(**fields: Any) -> dict[str, Any]:
    return {
        "apiGroups": [GROUP],
        "apiVersions": ["v1"],
        "operations": ["*"],
        "resources": ["customtasks"],
        **fields,
    }


@pytest.mark.parametrize(
    ("resources", "subresource", "matches"),
    [
        (["customtasks"], "", True),
        (["customtasks"], "status", False),
        (["*"], "", True),
        (["*"], "status", False),  # "*" is every resource, none of their subresources
        (["*/*"], "", True),
        (["*/*"], "status", True),
        (["customtasks/status"], "status", True),
        (["customtasks/status"], "", False),
        (["customtasks/*"], "status", True),
        (["customtasks/*"], "", True),
        (["*/status"], "status", True),
        (["*/scale"], "status", False),
        (["clustertasks"], "", False),
    ],
)
def test_resources_and_subresources(resources: list[str], subresource: str, matches: bool) -> None:
    assert rule_matches(rule(resources=resources), attributes(subresource=subresource)) is matches


def test_operations_groups_versions_scope_and_names() -> None:
    assert rule_matches(rule(operations=["CREATE"]), attributes(CREATE))
    assert not rule_matches(rule(operations=["CREATE"]), attributes(UPDATE))
    assert not rule_matches(rule(apiGroups=["apps"]), attributes())
    assert rule_matches(rule(apiGroups=["*"], apiVersions=["*"]), attributes())
    assert not rule_matches(rule(apiVersions=["v2"]), attributes())
    assert rule_matches(rule(scope="Namespaced"), attributes())
    assert not rule_matches(rule(scope="Cluster"), attributes())
    assert rule_matches(rule(scope="Cluster"), attributes(resource="customtasks", namespace=""))
    assert rule_matches(rule(resourceNames=["t"]), attributes())
    assert not rule_matches(rule(resourceNames=["other"]), attributes())


def test_exclusions_win_and_a_binding_may_leave_rules_out() -> None:
    match = {"resourceRules": [rule()], "excludeResourceRules": [rule(resourceNames=["t"])]}
    assert not match_of(match, attributes(), None, rules_required=True)
    assert match_of(match, attributes(name="u"), None, rules_required=True)
    assert not match_of({}, attributes(), None, rules_required=True)
    assert match_of({}, attributes(), None, rules_required=False)
    assert match_of(None, attributes(), None, rules_required=False)


def test_namespace_and_object_selectors() -> None:
    gold = {"metadata": {"name": "team", "labels": {"tier": "gold"}}}
    by_tier = {"resourceRules": [rule()], "namespaceSelector": {"matchLabels": {"tier": "gold"}}}
    assert match_of(by_tier, attributes(), gold, rules_required=True)
    assert not match_of(by_tier, attributes(), {"metadata": {}}, rules_required=True)
    # a cluster-scoped object has no namespace to select by
    assert match_of(by_tier, attributes(namespace=""), None, rules_required=True)
    checked = {"resourceRules": [rule()], "objectSelector": {"matchLabels": {"checked": "yes"}}}
    assert match_of(checked, attributes(labels={"checked": "yes"}), None, rules_required=True)
    assert not match_of(checked, attributes(labels={}), None, rules_required=True)
    dropped = attributes(UPDATE, labels={}, old_labels={"checked": "yes"})
    assert match_of(checked, dropped, None, rules_required=True)  # the old labels do


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        ({"key": "tier", "operator": "In", "values": ["gold", "silver"]}, True),
        ({"key": "tier", "operator": "In", "values": ["bronze"]}, False),
        ({"key": "tier", "operator": "NotIn", "values": ["bronze"]}, True),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, True),  # absent: not in
        ({"key": "tier", "operator": "Exists"}, True),
        ({"key": "zone", "operator": "Exists"}, False),
        ({"key": "zone", "operator": "DoesNotExist"}, True),
        ({"key": "tier", "operator": "DoesNotExist"}, False),
    ],
)
def test_label_selector_expressions(expression: dict[str, Any], matches: bool) -> None:
    assert selects({"matchExpressions": [expression]}, {"tier": "gold"}) is matches
    assert selects({}, {}) and selects(None, {"any": "thing"})
