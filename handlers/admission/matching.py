"""Which writes a policy or a binding addresses: ``matchResources`` as k8s.io/apiserver's
admission matching reads it (resource rules with their wildcards and subresources,
operations, scope, exclusions, namespace and object label selectors)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from handlers.api.admission import Attributes


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A ``metav1.LabelSelector``: absent or empty selects everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator = requirement.get("key", ""), requirement.get("operator")
        values = requirement.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def _named(patterns: Sequence[str], value: str) -> bool:
    return "*" in patterns or value in patterns


def _resource_named(patterns: Sequence[str], resource: str, subresource: str) -> bool:
    """``resources`` of a rule: ``*`` (resources, not subresources), ``*/*``, ``r``,
    ``r/s``, ``r/*`` and ``*/s``."""
    for pattern in patterns:
        name, _, sub = pattern.partition("/")
        if not sub and not subresource and name in ("*", resource):
            return True
        if sub and subresource and name in ("*", resource) and sub in ("*", subresource):
            return True
    return False


def rule_matches(rule: Mapping[str, Any], attributes: Attributes) -> bool:
    """A ``NamedRuleWithOperations``."""
    scope = rule.get("scope") or "*"
    namespaced = bool(attributes.namespace)
    names = rule.get("resourceNames") or []
    return (
        _named(rule.get("operations") or [], attributes.operation)
        and _named(rule.get("apiGroups") or [], attributes.group)
        and _named(rule.get("apiVersions") or [], attributes.version)
        and _resource_named(
            rule.get("resources") or [], attributes.resource, attributes.subresource
        )
        and scope in ("*", "Namespaced" if namespaced else "Cluster")
        and (not names or attributes.name in names)
    )


def resources_match(
    match: Mapping[str, Any] | None,
    attributes: Attributes,
    namespace: Mapping[str, Any] | None,
    *,
    rules_required: bool,
) -> bool:
    """``matchResources``: the selectors, then a resource rule unless an exclusion holds.
    A binding's rules may be left out (``rules_required`` false): then only its selectors
    narrow what its policy matches."""
    match = match or {}
    if namespace is not None and not selects(match.get("namespaceSelector"), _labels(namespace)):
        return False
    object_selector = match.get("objectSelector")
    if object_selector and not (
        (attributes.object is not None and selects(object_selector, _labels(attributes.object)))
        or (
            attributes.old_object is not None
            and selects(object_selector, _labels(attributes.old_object))
        )
    ):
        return False
    rules = match.get("resourceRules") or []
    if (rules or rules_required) and not any(rule_matches(r, attributes) for r in rules):
        return False
    return not any(rule_matches(r, attributes) for r in match.get("excludeResourceRules") or [])
