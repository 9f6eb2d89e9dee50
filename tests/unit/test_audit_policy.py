"""The audit policy decides as kube's policy checker does (its own test cases among these),
and refuses what kube's ValidatePolicy refuses, in kube's words."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from handlers.api.users import User
from proxy.audit.policy import STAGES, Level, Policy, PolicyError, RequestConfig
from proxy.requestinfo import RequestInfo, parse

TIM = User("tim@k8s.io", ("humans", "developers"))
NOBODY = User("system:anonymous", ("system:unauthenticated",))

NAMESPACED = RequestInfo(
    path="/api/v1/namespaces/default/pods/busybox",
    verb="get",
    is_resource=True,
    version="v1",
    namespace="default",
    resource="pods",
    name="busybox",
)
CLUSTER = RequestInfo(
    path="/apis/rbac.authorization.k8s.io/v1/clusterroles/edit",
    verb="get",
    is_resource=True,
    group="rbac.authorization.k8s.io",
    version="v1",
    resource="clusterroles",
    name="edit",
)
NON_RESOURCE = RequestInfo(path="/logs/kubelet.log", verb="get")
SUBRESOURCE = RequestInfo(
    path="/api/v1/namespaces/default/pods/busybox/log",
    verb="get",
    is_resource=True,
    version="v1",
    namespace="default",
    resource="pods",
    name="busybox",
    subresource="log",
)
STATUS_UPDATE = RequestInfo(
    path="/apis/rbac.authorization.k8s.io/v1/clusterroles/somerole/status",
    verb="update",
    is_resource=True,
    group="rbac.authorization.k8s.io",
    version="v1",
    resource="clusterroles",
    name="somerole",
    subresource="status",
)

RULES: dict[str, dict[str, Any]] = {
    "default": {"level": "Metadata"},
    "create": {"level": "Request", "verbs": ["create"]},
    "tims": {"level": "Metadata", "users": ["tim@k8s.io"]},
    "humans": {"level": "Metadata", "userGroups": ["humans"]},
    "serviceAccounts": {"level": "Request", "userGroups": ["system:serviceaccounts"]},
    "getPods": {
        "level": "RequestResponse",
        "verbs": ["get"],
        "resources": [{"resources": ["pods"]}],
    },
    "getPodLogs": {
        "level": "Request",
        "verbs": ["get"],
        "resources": [{"resources": ["pods/log"]}],
    },
    "anyResource": {"level": "Request", "verbs": ["get"], "resources": [{"resources": ["*"]}]},
    "anyLog": {"level": "Request", "verbs": ["get"], "resources": [{"resources": ["*/log"]}]},
    "podsAndSubs": {"level": "Request", "verbs": ["get"], "resources": [{"resources": ["pods/*"]}]},
    "getClusterRoles": {
        "level": "RequestResponse",
        "verbs": ["get"],
        "resources": [{"group": "rbac.authorization.k8s.io", "resources": ["clusterroles"]}],
        "namespaces": [""],
    },
    "anyGroupStatus": {
        "level": "RequestResponse",
        "verbs": ["update"],
        "resources": [{"group": "*", "resources": ["*/status"]}],
    },
    "getLogs": {"level": "RequestResponse", "verbs": ["get"], "nonResourceURLs": ["/logs*"]},
    "getMetrics": {"level": "Request", "verbs": ["get"], "nonResourceURLs": ["/metrics"]},
    "clusterRoleEdit": {
        "level": "Request",
        "resources": [
            {
                "group": "rbac.authorization.k8s.io",
                "resources": ["clusterroles"],
                "resourceNames": ["edit"],
            }
        ],
    },
    "omitReceived": {"level": "Request", "omitStages": ["RequestReceived"]},
    "onlyPanic": {
        "level": "Request",
        "omitStages": ["RequestReceived", "ResponseStarted", "ResponseComplete"],
    },
}


def policy(*rules: dict[str, Any], **fields: Any) -> Policy:
    return Policy.from_document(
        {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": list(rules), **fields}
    )


def level(user: User, info: RequestInfo, *names: str) -> Level:
    return policy(*(RULES[name] for name in names)).evaluate(user, info).level


# kube's checker_test.go, case for case.
KUBE_CASES = [
    (NAMESPACED, Level.METADATA, ("default",)),
    (NAMESPACED, Level.NONE, ("create",)),
    (NAMESPACED, Level.METADATA, ("tims",)),
    (NAMESPACED, Level.METADATA, ("humans",)),
    (NAMESPACED, Level.NONE, ("serviceAccounts",)),
    (NAMESPACED, Level.REQUEST_RESPONSE, ("getPods",)),
    (NAMESPACED, Level.NONE, ("getClusterRoles",)),
    (NAMESPACED, Level.NONE, ("getLogs",)),
    (NAMESPACED, Level.NONE, ("getMetrics",)),
    (NAMESPACED, Level.METADATA, ("getMetrics", "serviceAccounts", "default")),
    (NAMESPACED, Level.REQUEST_RESPONSE, ("getMetrics", "getPods", "default")),
    (NAMESPACED, Level.REQUEST_RESPONSE, ("getPodLogs", "getPods")),
    (CLUSTER, Level.METADATA, ("default",)),
    (CLUSTER, Level.NONE, ("create",)),
    (CLUSTER, Level.METADATA, ("tims",)),
    (CLUSTER, Level.METADATA, ("humans",)),
    (CLUSTER, Level.NONE, ("serviceAccounts",)),
    (CLUSTER, Level.NONE, ("getPods",)),
    (CLUSTER, Level.REQUEST_RESPONSE, ("getClusterRoles",)),
    (CLUSTER, Level.REQUEST, ("clusterRoleEdit", "getClusterRoles")),
    (CLUSTER, Level.NONE, ("getLogs",)),
    (CLUSTER, Level.NONE, ("getMetrics",)),
    (CLUSTER, Level.METADATA, ("getMetrics", "serviceAccounts", "default")),
    (CLUSTER, Level.REQUEST_RESPONSE, ("getMetrics", "getClusterRoles", "default")),
    (CLUSTER, Level.NONE, ("getPodLogs", "getPods")),
    (NON_RESOURCE, Level.METADATA, ("default",)),
    (NON_RESOURCE, Level.NONE, ("create",)),
    (NON_RESOURCE, Level.METADATA, ("tims",)),
    (NON_RESOURCE, Level.METADATA, ("humans",)),
    (NON_RESOURCE, Level.NONE, ("serviceAccounts",)),
    (NON_RESOURCE, Level.NONE, ("getPods",)),
    (NON_RESOURCE, Level.NONE, ("getClusterRoles",)),
    (NON_RESOURCE, Level.REQUEST_RESPONSE, ("getLogs",)),
    (NON_RESOURCE, Level.NONE, ("getMetrics",)),
    (NON_RESOURCE, Level.METADATA, ("getMetrics", "serviceAccounts", "default")),
    (NON_RESOURCE, Level.REQUEST_RESPONSE, ("getLogs", "getClusterRoles", "default")),
    (NON_RESOURCE, Level.NONE, ("getPodLogs", "getPods")),
    (SUBRESOURCE, Level.REQUEST, ("getPodLogs", "getPods")),
    (SUBRESOURCE, Level.REQUEST, ("anyResource",)),
    (SUBRESOURCE, Level.REQUEST, ("anyLog",)),
    (SUBRESOURCE, Level.REQUEST, ("podsAndSubs",)),
    (STATUS_UPDATE, Level.REQUEST_RESPONSE, ("anyGroupStatus",)),
]


@pytest.mark.parametrize(("info", "expected", "names"), KUBE_CASES)
def test_the_first_matching_rule_decides_as_in_kubes_checker(
    info: RequestInfo, expected: Level, names: tuple[str, ...]
) -> None:
    assert level(TIM, info, *names) is expected


@pytest.mark.parametrize(
    ("names", "expected"),
    [(("tims",), Level.NONE), (("tims", "default"), Level.METADATA), (("humans",), Level.NONE)],
)
def test_user_and_group_rules_skip_other_users(names: tuple[str, ...], expected: Level) -> None:
    assert level(NOBODY, NAMESPACED, *names) is expected


def test_a_user_matches_when_any_of_its_groups_is_listed() -> None:
    rule = {"level": "Request", "userGroups": ["nobody", "developers"]}
    assert policy(rule).evaluate(TIM, NAMESPACED).level is Level.REQUEST


def test_verbs_select_by_kubes_verb_and_by_the_lowercased_method_for_other_paths() -> None:
    rules = policy({"level": "Request", "verbs": ["list", "post"]})
    listing = parse("GET", "/apis/g/v1/namespaces/ns/things", {})
    assert rules.evaluate(TIM, listing).level is Level.REQUEST
    assert rules.evaluate(TIM, parse("POST", "/openapi/v2", {})).level is Level.REQUEST
    assert rules.evaluate(TIM, parse("GET", "/openapi/v2", {})).level is Level.NONE


def test_namespace_empty_string_selects_cluster_scoped_resources_only() -> None:
    rules = policy({"level": "Request", "namespaces": [""]})
    assert rules.evaluate(TIM, CLUSTER).level is Level.REQUEST
    assert rules.evaluate(TIM, NAMESPACED).level is Level.NONE
    assert rules.evaluate(TIM, NON_RESOURCE).level is Level.NONE


def test_namespaces_select_resources_in_them() -> None:
    rules = policy({"level": "Request", "namespaces": ["kube-system", "default"]})
    assert rules.evaluate(TIM, NAMESPACED).level is Level.REQUEST
    other = RequestInfo(path="/x", verb="get", is_resource=True, namespace="other", resource="pods")
    assert rules.evaluate(TIM, other).level is Level.NONE


@pytest.mark.parametrize(
    ("pattern", "plain", "log"),
    [
        ("pods", True, False),
        ("pods/log", False, True),
        ("*", True, True),
        ("pods/*", True, True),
        ("*/log", False, True),
        ("*/exec", False, False),
        ("services", False, False),
    ],
)
def test_resource_patterns(pattern: str, plain: bool, log: bool) -> None:
    rules = policy({"level": "Request", "resources": [{"resources": [pattern]}]})
    assert (rules.evaluate(TIM, NAMESPACED).level is Level.REQUEST) is plain
    assert (rules.evaluate(TIM, SUBRESOURCE).level is Level.REQUEST) is log


def test_resources_are_matched_in_their_group_or_in_any_group_for_star() -> None:
    core_pods = policy({"level": "Request", "resources": [{"group": "", "resources": ["pods"]}]})
    other_pods = RequestInfo(path="/x", verb="get", is_resource=True, group="g", resource="pods")
    assert core_pods.evaluate(TIM, NAMESPACED).level is Level.REQUEST
    assert core_pods.evaluate(TIM, other_pods).level is Level.NONE
    any_pods = policy({"level": "Request", "resources": [{"group": "*", "resources": ["pods"]}]})
    assert any_pods.evaluate(TIM, other_pods).level is Level.REQUEST
    whole_group = policy({"level": "Request", "resources": [{"group": "g"}]})
    assert whole_group.evaluate(TIM, other_pods).level is Level.REQUEST
    assert whole_group.evaluate(TIM, NAMESPACED).level is Level.NONE


def test_resource_names_narrow_a_group_resources_entry() -> None:
    rule = {
        "level": "Request",
        "resources": [{"resources": ["pods"], "resourceNames": ["busybox"]}],
    }
    rules = policy(rule)
    assert rules.evaluate(TIM, NAMESPACED).level is Level.REQUEST
    other = RequestInfo(path="/x", verb="get", is_resource=True, resource="pods", name="nginx")
    assert rules.evaluate(TIM, other).level is Level.NONE
    listing = RequestInfo(path="/x", verb="list", is_resource=True, resource="pods")
    assert rules.evaluate(TIM, listing).level is Level.NONE


def test_a_list_pinned_to_one_name_by_field_selector_matches_resource_names() -> None:
    """kube's RequestInfo takes ``metadata.name=`` of a list or watch as the name."""
    things = {"group": "g", "resources": ["things"], "resourceNames": ["a"]}
    rule = {"level": "Request", "resources": [things]}
    info = parse("GET", "/apis/g/v1/things", {"fieldSelector": "metadata.name=a"})
    assert policy(rule).evaluate(TIM, info).level is Level.REQUEST


@pytest.mark.parametrize(
    ("path", "matched"),
    [
        ("/metrics", True),
        ("/metrics/extra", False),
        ("/healthz", True),
        ("/healthz/ping", True),
        ("/healthzz", True),
        ("/apis", False),
    ],
)
def test_non_resource_urls_match_exactly_or_by_a_trailing_star(path: str, matched: bool) -> None:
    rules = policy({"level": "Request", "nonResourceURLs": ["/metrics", "/healthz*"]})
    result = rules.evaluate(TIM, RequestInfo(path=path, verb="get")).level
    assert (result is Level.REQUEST) is matched


def test_a_star_non_resource_url_matches_every_non_resource_path_and_no_resource() -> None:
    rules = policy({"level": "Request", "nonResourceURLs": ["*"]})
    assert rules.evaluate(TIM, NON_RESOURCE).level is Level.REQUEST
    assert rules.evaluate(TIM, NAMESPACED).level is Level.NONE


def test_a_rule_without_selectors_matches_everything() -> None:
    rules = policy({"level": "Metadata"})
    for info in (NAMESPACED, CLUSTER, NON_RESOURCE, SUBRESOURCE):
        assert rules.evaluate(NOBODY, info).level is Level.METADATA


def test_no_match_is_level_none_with_the_policys_omitted_stages() -> None:
    rules = policy(RULES["create"], omitStages=["RequestReceived"], omitManagedFields=True)
    assert rules.evaluate(TIM, NAMESPACED) == RequestConfig(
        Level.NONE, frozenset({"RequestReceived"}), True
    )


@pytest.mark.parametrize(
    ("policy_stages", "names", "expected"),
    [
        ((), ("omitReceived", "getPods", "default"), {"RequestReceived"}),
        (
            (),
            ("onlyPanic", "getPods", "default"),
            {"RequestReceived", "ResponseStarted", "ResponseComplete"},
        ),
        (
            ("RequestReceived", "ResponseStarted"),
            ("getPods",),
            {"RequestReceived", "ResponseStarted"},
        ),
        (
            ("RequestReceived", "ResponseStarted"),
            ("onlyPanic",),
            {"RequestReceived", "ResponseStarted", "ResponseComplete"},
        ),
        (("ResponseStarted",), ("omitReceived",), {"RequestReceived", "ResponseStarted"}),
    ],
)
def test_omitted_stages_are_the_policys_and_the_rules_together(
    policy_stages: tuple[str, ...], names: tuple[str, ...], expected: set[str]
) -> None:
    rules = policy(*(RULES[n] for n in names), omitStages=list(policy_stages))
    assert rules.evaluate(TIM, NAMESPACED).omit_stages == expected


@pytest.mark.parametrize(
    ("policy_value", "rule_value", "expected"),
    [
        (None, None, False),
        (True, None, True),
        (True, False, False),
        (False, True, True),
        (None, True, True),
    ],
)
def test_a_rules_omit_managed_fields_overrides_the_policys(
    policy_value: bool | None, rule_value: bool | None, expected: bool
) -> None:
    rule: dict[str, Any] = {"level": "Request"}
    if rule_value is not None:
        rule["omitManagedFields"] = rule_value
    top = {} if policy_value is None else {"omitManagedFields": policy_value}
    assert policy(rule, **top).evaluate(TIM, NAMESPACED).omit_managed_fields is expected


def test_levels_are_ordered() -> None:
    assert list(Level) == [Level.NONE, Level.METADATA, Level.REQUEST, Level.REQUEST_RESPONSE]
    assert Level.REQUEST.at_least(Level.METADATA)
    assert Level.REQUEST.at_least(Level.REQUEST)
    assert not Level.METADATA.at_least(Level.REQUEST)
    assert Level.REQUEST_RESPONSE.at_least(Level.NONE)
    assert STAGES == ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")


SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({}, "rules[0].level: Required value"),
        ({"level": ""}, "rules[0].level: Required value"),
        (
            {"level": "Everything"},
            'rules[0].level: Unsupported value: "Everything": supported values: "None", '
            '"Metadata", "Request", "RequestResponse"',
        ),
        (
            {"level": "None", "nonResourceURLs": ["metrics"]},
            'rules[0].nonResourceURLs[0]: Invalid value: "metrics": '
            "non-resource URL rules must begin with a '/' character",
        ),
        (
            {"level": "None", "nonResourceURLs": ["/*/healthz"]},
            'rules[0].nonResourceURLs[0]: Invalid value: "/*/healthz": '
            "non-resource URL wildcards '*' must be the final character of the rule",
        ),
        (
            {"level": "None", "nonResourceURLs": ["/metrics"], "resources": [{"group": ""}]},
            'rules[0].nonResourceURLs: Invalid value: ["/metrics"]: '
            "rules cannot apply to both regular resources and non-resource URLs",
        ),
        (
            {"level": "None", "nonResourceURLs": ["/metrics"], "namespaces": ["default"]},
            'rules[0].nonResourceURLs: Invalid value: ["/metrics"]: '
            "rules cannot apply to both regular resources and non-resource URLs",
        ),
        (
            {"level": "None", "resources": [{"group": "rbac.authorization.k8s.io/v1"}]},
            f'rules[0].resources.group: Invalid value: "rbac.authorization.k8s.io/v1": {SUBDOMAIN}',
        ),
        (
            {"level": "None", "resources": [{"resourceNames": ["a", "b"]}]},
            'rules[0].resources.resourceNames: Invalid value: ["a","b"]: '
            "using resourceNames requires at least one resource",
        ),
        (
            {"level": "None", "omitStages": ["Done"]},
            'rules[0].omitStages[0]: Invalid value: "Done": allowed stages are '
            "RequestReceived,ResponseStarted,ResponseComplete,Panic",
        ),
    ],
)
def test_invalid_rules_are_refused_in_kubes_words(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        policy(rule)
    assert str(refused.value) == message
    assert refused.value.errors == (message,)


def test_group_star_and_the_core_group_are_valid() -> None:
    rules = policy({"level": "None", "resources": [{"group": "*"}, {"group": ""}]})
    assert len(rules) == 1


def test_the_policys_own_omit_stages_are_validated() -> None:
    with pytest.raises(PolicyError, match=r'^omitStages\[1\]: Invalid value: "Later"'):
        policy({"level": "None"}, omitStages=["Panic", "Later"])


def test_several_errors_are_listed_together_as_kubes_aggregate() -> None:
    with pytest.raises(PolicyError) as refused:
        policy({"level": "None"}, {"level": "Lots"}, {})
    assert str(refused.value) == (
        '[rules[1].level: Unsupported value: "Lots": supported values: "None", "Metadata", '
        '"Request", "RequestResponse", rules[2].level: Required value]'
    )
    assert len(refused.value.errors) == 2


def test_a_policy_without_rules_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"^loaded illegal policy with 0 rules$"):
        policy()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"rules": [{"level": "None"}]}, "unknown group version field /, Kind= in policy"),
        (
            {"apiVersion": "audit.k8s.io/v1beta1", "kind": "Policy"},
            "unknown group version field audit.k8s.io/v1beta1, Kind=Policy in policy",
        ),
        (
            {"apiVersion": "audit.k8s.io/v1", "kind": "Event"},
            "unknown group version field audit.k8s.io/v1, Kind=Event in policy",
        ),
    ],
)
def test_only_audit_k8s_io_v1_policies_are_read(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        Policy.from_document(doc)
    assert str(refused.value) == message


def test_misshapen_fields_are_decoding_errors() -> None:
    with pytest.raises(PolicyError, match=r"^failed decoding: rules\[0\]\.users: expected a list"):
        policy({"level": "None", "users": "tim"})


def test_unknown_fields_are_warned_of_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="apiserver.audit"):
        rules = policy({"level": "Metadata", "user": ["typo"]}, extra=True)
    assert rules.evaluate(NOBODY, NAMESPACED).level is Level.METADATA
    assert 'unknown field "rules[0].user"' in caplog.text
    assert 'unknown field "extra"' in caplog.text
    assert "falling back to lenient decoding" in caplog.text


POLICY_YAML = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz"]
  - level: RequestResponse
    resources:
      - group: ""
        resources: ["pods"]
  - level: Metadata
"""


def test_a_policy_file_is_read_as_yaml(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_YAML)
    rules = Policy.from_file(str(path))
    assert rules.evaluate(TIM, RequestInfo(path="/healthz/etcd", verb="get")).level is Level.NONE
    assert rules.evaluate(TIM, NAMESPACED) == RequestConfig(
        Level.REQUEST_RESPONSE, frozenset({"RequestReceived"}), False
    )
    assert rules.evaluate(TIM, CLUSTER).level is Level.METADATA


def test_a_policy_file_is_read_as_json(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    doc = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Request"}]}
    path.write_text(json.dumps(doc))
    assert Policy.from_file(str(path)).evaluate(TIM, NAMESPACED).level is Level.REQUEST


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\n")
    with pytest.raises(
        PolicyError, match=f"^loaded illegal policy with 0 rules: from file {path}$"
    ):
        Policy.from_file(str(path))
    with pytest.raises(PolicyError, match=r"^failed to read file path"):
        Policy.from_file(str(tmp_path / "missing.yaml"))
    with pytest.raises(PolicyError, match=r"^file path not specified$"):
        Policy.from_file("")


def test_evaluation_takes_microseconds() -> None:
    """A policy like the usual cluster ones: a dozen rules, the catch-all last."""
    rules = policy(
        {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"]},
        {"level": "None", "userGroups": ["system:nodes"], "verbs": ["get"]},
        {"level": "None", "nonResourceURLs": ["/healthz*", "/version", "/swagger*"]},
        {"level": "None", "resources": [{"group": "", "resources": ["events"]}]},
        {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets", "configmaps"]}]},
        {"level": "Request", "verbs": ["get", "list", "watch"], "resources": [{"group": "g"}]},
        {"level": "RequestResponse", "resources": [{"group": "a"}, {"group": "b"}, {"group": "c"}]},
        {"level": "Metadata", "omitStages": ["RequestReceived"]},
    )
    info = parse("PATCH", "/apis/h/v1/namespaces/ns/things/x/status", {})
    rounds = 20_000
    start = time.perf_counter()
    for _ in range(rounds):
        rules.evaluate(TIM, info)
    per_call = (time.perf_counter() - start) / rounds
    assert rules.evaluate(TIM, info).level is Level.METADATA
    assert per_call < 20e-6
