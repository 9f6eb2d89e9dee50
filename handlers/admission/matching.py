"""Which writes a policy or a binding addresses: ``matchResources`` as k8s.io/apiserver's
admission matching reads it (resource rules with their wildcards and subresources,
operations, scope, exclusions, namespace and object label selectors).

Every write is matched against every policy of the cluster, so a ``matchResources`` is read
once per policy generation into sets (:class:`Match`), and a write that no rule names costs
a few set lookups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.api.admission import Attributes

ANY = "*"


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


@dataclass(frozen=True, slots=True)
class Rule:
    """A ``NamedRuleWithOperations``, as sets. ``resources`` holds ``(resource, subresource)``
    pairs, each side ``*`` for any: ``*`` is every resource but none of their subresources,
    ``*/*`` every resource and subresource, ``r/*`` a resource and its subresources."""

    operations: frozenset[str]
    groups: frozenset[str]
    versions: frozenset[str]
    resources: frozenset[tuple[str, str]]
    scope: str
    names: frozenset[str]

    @classmethod
    def of(cls, rule: Mapping[str, Any]) -> Rule:
        return cls(
            frozenset(rule.get("operations") or ()),
            frozenset(rule.get("apiGroups") or ()),
            frozenset(rule.get("apiVersions") or ()),
            frozenset(_pair(r) for r in rule.get("resources") or ()),
            rule.get("scope") or ANY,
            frozenset(rule.get("resourceNames") or ()),
        )

    def matches(self, attributes: Attributes) -> bool:
        sub = attributes.subresource
        return (
            _named(self.operations, attributes.operation)
            and _named(self.groups, attributes.group)
            and _named(self.versions, attributes.version)
            and (
                (attributes.resource, sub) in self.resources
                or (ANY, sub) in self.resources
                or (attributes.resource, ANY) in self.resources
                or (ANY, ANY) in self.resources
            )
            and self.scope in (ANY, "Namespaced" if attributes.namespace else "Cluster")
            and (not self.names or attributes.name in self.names)
        )


def _pair(pattern: str) -> tuple[str, str]:
    resource, _, sub = pattern.partition("/")
    return resource, sub


def _named(patterns: frozenset[str], value: str) -> bool:
    return value in patterns or ANY in patterns


@dataclass(frozen=True, slots=True)
class Match:
    """A ``matchResources``. A binding's rules may be left out (``rules_required`` false):
    then only its selectors narrow what its policy matches."""

    rules: tuple[Rule, ...]
    excluded: tuple[Rule, ...]
    namespace_selector: Mapping[str, Any] | None
    object_selector: Mapping[str, Any] | None
    rules_required: bool

    @classmethod
    def of(cls, match: Mapping[str, Any] | None, *, rules_required: bool) -> Match:
        match = match or {}
        return cls(
            _rules(match.get("resourceRules")),
            _rules(match.get("excludeResourceRules")),
            match.get("namespaceSelector"),
            match.get("objectSelector"),
            rules_required,
        )

    def matches(self, attributes: Attributes, namespace: Mapping[str, Any] | None) -> bool:
        """The rules first (what most policies differ by), then the exclusions and the
        selectors; a cluster-scoped write has no namespace to select by."""
        if (self.rules or self.rules_required) and not any(
            r.matches(attributes) for r in self.rules
        ):
            return False
        if self.excluded and any(r.matches(attributes) for r in self.excluded):
            return False
        if (
            self.namespace_selector
            and namespace is not None
            and not selects(self.namespace_selector, _labels(namespace))
        ):
            return False
        return not self.object_selector or (
            (
                attributes.object is not None
                and selects(self.object_selector, _labels(attributes.object))
            )
            or (
                attributes.old_object is not None
                and selects(self.object_selector, _labels(attributes.old_object))
            )
        )


def _rules(rules: Sequence[Mapping[str, Any]] | None) -> tuple[Rule, ...]:
    return tuple(Rule.of(r) for r in rules or ())
