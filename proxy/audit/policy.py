"""kube's audit policy (``audit.k8s.io/v1`` ``Policy``): which requests are audited, at what
level, and which stages are left out.

A policy file is read, decoded and validated as kube-apiserver's ``--audit-policy-file`` is,
refusals in kube's words and field paths. Every rule is compiled once into sets and prefixes,
and each one's answer (a :class:`RequestConfig`) is built once too: :meth:`Policy.evaluate`
runs on every request and only looks things up.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from handlers.api.names import dns1123_subdomain
from handlers.api.users import User
from proxy.requestinfo import RequestInfo

log = logging.getLogger("apiserver.audit")

API_VERSION = "audit.k8s.io/v1"


class Level(enum.StrEnum):
    """How much of a request is recorded; each level records what the one before does."""

    NONE = "None"
    METADATA = "Metadata"
    REQUEST = "Request"
    REQUEST_RESPONSE = "RequestResponse"

    def at_least(self, other: Level) -> bool:
        """kube's ``!level.Less(other)``."""
        return _RANK[self] >= _RANK[other]


_RANK = {level: rank for rank, level in enumerate(Level)}

REQUEST_RECEIVED = "RequestReceived"
RESPONSE_STARTED = "ResponseStarted"
RESPONSE_COMPLETE = "ResponseComplete"
PANIC = "Panic"
STAGES = (REQUEST_RECEIVED, RESPONSE_STARTED, RESPONSE_COMPLETE, PANIC)
"""kube's stages, in kube's order (its validation message lists them so)."""


@dataclass(frozen=True, slots=True)
class RequestConfig:
    """What the policy decided for one request (kube's ``RequestAuditConfig``)."""

    level: Level
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False


class PolicyError(ValueError):
    """A policy kube-apiserver would refuse to start with; ``errors`` are the field errors."""

    def __init__(self, message: str, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.errors = tuple(errors)


# --- reading -------------------------------------------------------------------------------

_POLICY_FIELDS = frozenset(
    {"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"}
)
_RULE_FIELDS = frozenset(
    {
        "level",
        "users",
        "userGroups",
        "verbs",
        "resources",
        "namespaces",
        "nonResourceURLs",
        "omitStages",
        "omitManagedFields",
    }
)
_GROUP_RESOURCE_FIELDS = frozenset({"group", "resources", "resourceNames"})


def _quote(value: object) -> str:
    """Go's rendering of a bad value in a field error: quoted strings, compact JSON lists."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _aggregate(messages: Sequence[str]) -> str:
    """kube's ``ToAggregate().Error()``: one message alone, several in brackets, no repeats."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _decoding_error(path: str, expected: str) -> PolicyError:
    return PolicyError(f"failed decoding: {path}: expected {expected}")


def _strings(value: object, path: str) -> tuple[str, ...]:
    """A list of strings; ``null`` or absent is an empty list, as Go decodes it."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _decoding_error(path, "a list of strings")
    return tuple(value)


def _string(value: object, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _decoding_error(path, "a string")
    return value


def _optional_bool(value: object, path: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _decoding_error(path, "a boolean")


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _decoding_error(path, "an object")
    return value


def _mappings(value: object, path: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _decoding_error(path, "a list")
    return [_mapping(item, f"{path}[{i}]") for i, item in enumerate(value)]


def _unknown(doc: Mapping[str, Any], known: frozenset[str], path: str) -> list[str]:
    prefix = f"{path}." if path else ""
    return [f'unknown field "{prefix}{key}"' for key in doc if key not in known]


# --- validation (kube's ValidatePolicy) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _GroupResources:
    group: str
    resources: tuple[str, ...]
    resource_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Rule:
    level: str
    users: tuple[str, ...]
    user_groups: tuple[str, ...]
    verbs: tuple[str, ...]
    resources: tuple[_GroupResources, ...]
    namespaces: tuple[str, ...]
    non_resource_urls: tuple[str, ...]
    omit_stages: tuple[str, ...]
    omit_managed_fields: bool | None


def _validate_level(level: str, path: str) -> list[str]:
    if level in _RANK:
        return []
    if not level:
        return [f"{path}: Required value"]
    supported = ", ".join(_quote(str(v)) for v in Level)
    return [f"{path}: Unsupported value: {_quote(level)}: supported values: {supported}"]


def _validate_non_resource_urls(urls: Sequence[str], path: str) -> list[str]:
    errors = []
    for i, url in enumerate(urls):
        if url == "*":
            continue
        if not url.startswith("/"):
            errors.append(
                f"{path}[{i}]: Invalid value: {_quote(url)}: "
                "non-resource URL rules must begin with a '/' character"
            )
        if url and "*" in url[:-1]:
            errors.append(
                f"{path}[{i}]: Invalid value: {_quote(url)}: "
                "non-resource URL wildcards '*' must be the final character of the rule"
            )
    return errors


def _validate_resources(group_resources: Sequence[_GroupResources], path: str) -> list[str]:
    """kube reports these under ``resources.group``, without the list's index."""
    errors = []
    for gr in group_resources:
        if gr.group not in ("", "*") and (problems := dns1123_subdomain(gr.group)):
            errors.append(f"{path}.group: Invalid value: {_quote(gr.group)}: {','.join(problems)}")
        if gr.resource_names and not gr.resources:
            errors.append(
                f"{path}.resourceNames: Invalid value: {_quote(list(gr.resource_names))}: "
                "using resourceNames requires at least one resource"
            )
    return errors


def _validate_omit_stages(stages: Sequence[str], path: str) -> list[str]:
    allowed = ",".join(STAGES)
    return [
        f"{path}[{i}]: Invalid value: {_quote(stage)}: allowed stages are {allowed}"
        for i, stage in enumerate(stages)
        if stage not in STAGES
    ]


def _validate_rule(rule: _Rule, path: str) -> list[str]:
    errors = [
        *_validate_level(rule.level, f"{path}.level"),
        *_validate_non_resource_urls(rule.non_resource_urls, f"{path}.nonResourceURLs"),
        *_validate_resources(rule.resources, f"{path}.resources"),
        *_validate_omit_stages(rule.omit_stages, f"{path}.omitStages"),
    ]
    if rule.non_resource_urls and (rule.resources or rule.namespaces):
        errors.append(
            f"{path}.nonResourceURLs: Invalid value: {_quote(list(rule.non_resource_urls))}: "
            "rules cannot apply to both regular resources and non-resource URLs"
        )
    return errors


# --- decoding ------------------------------------------------------------------------------


def _decode_group_resources(doc: Mapping[str, Any], path: str) -> _GroupResources:
    return _GroupResources(
        group=_string(doc.get("group"), f"{path}.group"),
        resources=_strings(doc.get("resources"), f"{path}.resources"),
        resource_names=_strings(doc.get("resourceNames"), f"{path}.resourceNames"),
    )


def _decode_rule(doc: Mapping[str, Any], path: str) -> tuple[_Rule, list[str]]:
    """A rule and its unknown fields (kube warns of those and reads the rest)."""
    unknown = _unknown(doc, _RULE_FIELDS, path)
    resources = []
    for i, item in enumerate(_mappings(doc.get("resources"), f"{path}.resources")):
        unknown += _unknown(item, _GROUP_RESOURCE_FIELDS, f"{path}.resources[{i}]")
        resources.append(_decode_group_resources(item, f"{path}.resources[{i}]"))
    rule = _Rule(
        level=_string(doc.get("level"), f"{path}.level"),
        users=_strings(doc.get("users"), f"{path}.users"),
        user_groups=_strings(doc.get("userGroups"), f"{path}.userGroups"),
        verbs=_strings(doc.get("verbs"), f"{path}.verbs"),
        resources=tuple(resources),
        namespaces=_strings(doc.get("namespaces"), f"{path}.namespaces"),
        non_resource_urls=_strings(doc.get("nonResourceURLs"), f"{path}.nonResourceURLs"),
        omit_stages=_strings(doc.get("omitStages"), f"{path}.omitStages"),
        omit_managed_fields=_optional_bool(
            doc.get("omitManagedFields"), f"{path}.omitManagedFields"
        ),
    )
    return rule, unknown


def _check_type(doc: Mapping[str, Any]) -> None:
    """Only ``audit.k8s.io/v1`` ``Policy`` is read, as kube-apiserver since 1.24."""
    api_version = doc.get("apiVersion") or ""
    kind = doc.get("kind") or ""
    if api_version != API_VERSION or kind != "Policy":
        group, _, version = str(api_version).rpartition("/")
        raise PolicyError(f"unknown group version field {group}/{version}, Kind={kind} in policy")


# --- matching ------------------------------------------------------------------------------


class _GroupMatcher:
    """One ``resources`` entry, its patterns sorted by kind of wildcard."""

    __slots__ = ("any_group", "everything", "exact", "group", "names", "of_resource", "star", "sub")

    def __init__(self, gr: _GroupResources) -> None:
        self.group = gr.group
        self.any_group = gr.group == "*"
        self.everything = not gr.resources
        self.names = frozenset(gr.resource_names) if gr.resource_names else None
        self.exact = frozenset(gr.resources)
        self.star = "*" in self.exact
        self.sub = frozenset(r[2:] for r in gr.resources if r.startswith("*/"))
        self.of_resource = frozenset(r[:-2] for r in gr.resources if r.endswith("/*"))

    def matches(self, group: str, resource: str, subresource: str, name: str) -> bool:
        if not (self.any_group or group == self.group):
            return False
        if self.everything:
            return True
        if self.names is not None and name not in self.names:
            return False
        combined = f"{resource}/{subresource}" if subresource else resource
        return (
            self.star
            or combined in self.exact
            or (bool(subresource) and subresource in self.sub)
            or resource in self.of_resource
        )


class _CompiledRule:
    """A rule as sets, with its answer built once."""

    __slots__ = (
        "config",
        "groups",
        "namespaces",
        "path_prefixes",
        "paths",
        "resources",
        "selects_resources",
        "users",
        "verbs",
    )

    def __init__(self, rule: _Rule, config: RequestConfig) -> None:
        self.config = config
        self.users = frozenset(rule.users) or None
        self.groups = frozenset(rule.user_groups) or None
        self.verbs = frozenset(rule.verbs) or None
        self.selects_resources = bool(rule.namespaces or rule.resources)
        self.namespaces = frozenset(rule.namespaces) or None
        self.resources = tuple(_GroupMatcher(gr) for gr in rule.resources)
        urls = rule.non_resource_urls
        self.paths = frozenset(u for u in urls if not u.endswith("*")) or None
        self.path_prefixes = tuple(u.rstrip("*") for u in urls if u.endswith("*"))

    def matches(self, user: User, info: RequestInfo) -> bool:
        if self.users is not None and user.name not in self.users:
            return False
        if self.groups is not None and self.groups.isdisjoint(user.groups):
            return False
        if self.verbs is not None and info.verb not in self.verbs:
            return False
        if self.selects_resources:
            return info.is_resource and self._matches_resource(info)
        if self.paths is not None or self.path_prefixes:
            return not info.is_resource and self._matches_path(info.path)
        return True

    def _matches_resource(self, info: RequestInfo) -> bool:
        """Cluster-scoped resources are in namespace ``""``."""
        if self.namespaces is not None and (info.namespace or "") not in self.namespaces:
            return False
        if not self.resources:
            return True
        subresource = info.subresource or ""
        name = info.authorized_name
        for matcher in self.resources:
            if matcher.matches(info.group, info.resource, subresource, name):
                return True
        return False

    def _matches_path(self, path: str) -> bool:
        """``*`` alone matches every path; a trailing ``*`` any path that starts so."""
        if self.paths is not None and path in self.paths:
            return True
        return path.startswith(self.path_prefixes)


class Policy:
    """A validated policy, compiled for :meth:`evaluate`."""

    def __init__(
        self,
        rules: Sequence[_Rule],
        *,
        omit_stages: frozenset[str] = frozenset(),
        omit_managed_fields: bool = False,
    ) -> None:
        self.omit_stages = omit_stages
        self.omit_managed_fields = omit_managed_fields
        self._default = RequestConfig(Level.NONE, omit_stages, omit_managed_fields)
        self._rules = tuple(
            _CompiledRule(rule, self._config_of(rule, omit_stages, omit_managed_fields))
            for rule in rules
        )

    @staticmethod
    def _config_of(rule: _Rule, omit_stages: frozenset[str], omit_managed: bool) -> RequestConfig:
        """omitStages is the policy's and the rule's together; a rule's omitManagedFields,
        when set, overrides the policy's."""
        managed = omit_managed if rule.omit_managed_fields is None else rule.omit_managed_fields
        return RequestConfig(Level(rule.level), omit_stages | set(rule.omit_stages), managed)

    @classmethod
    def from_file(cls, path: str) -> Policy:
        """Read a policy file, YAML or JSON, as kube's ``LoadPolicyFromFile``."""
        if not path:
            raise PolicyError("file path not specified")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as ex:
            raise PolicyError(f"failed to read file path {_quote(path)}: {ex}") from ex
        try:
            doc = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as ex:
            raise PolicyError(f"failed decoding: {ex}: from file {path}") from ex
        try:
            return cls.from_document(doc)
        except PolicyError as ex:
            raise PolicyError(f"{ex}: from file {path}", ex.errors) from ex

    @classmethod
    def from_document(cls, doc: object) -> Policy:
        """Decode and validate a policy document; unknown fields are warned of and ignored,
        as kube falls back to lenient decoding."""
        policy = _mapping(doc, "policy")
        _check_type(policy)
        unknown = _unknown(policy, _POLICY_FIELDS, "")
        rules: list[_Rule] = []
        for i, item in enumerate(_mappings(policy.get("rules"), "rules")):
            rule, extra = _decode_rule(item, f"rules[{i}]")
            rules.append(rule)
            unknown += extra
        if unknown:
            log.warning(
                "Audit policy contains errors, falling back to lenient decoding: "
                "strict decoding error: %s",
                ", ".join(unknown),
            )
        omit_stages = _strings(policy.get("omitStages"), "omitStages")
        omit_managed = _optional_bool(policy.get("omitManagedFields"), "omitManagedFields")
        errors = _validate_omit_stages(omit_stages, "omitStages")
        for i, rule in enumerate(rules):
            errors += _validate_rule(rule, f"rules[{i}]")
        if errors:
            raise PolicyError(_aggregate(errors), errors)
        if not rules:
            raise PolicyError("loaded illegal policy with 0 rules")
        return cls(
            rules, omit_stages=frozenset(omit_stages), omit_managed_fields=bool(omit_managed)
        )

    def evaluate(self, user: User, info: RequestInfo) -> RequestConfig:
        """The first rule that matches decides; none matching means level None."""
        for rule in self._rules:
            if rule.matches(user, info):
                return rule.config
        return self._default

    def __len__(self) -> int:
        return len(self._rules)
