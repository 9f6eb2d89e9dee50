"""ValidatingAdmissionPolicy in the admission chain (R12): the cluster's policies and
bindings (admissionregistration.k8s.io/v1, read from the fake cluster through list+watch)
apply to every write of customtasks and clustertasks, worded as kube-apiserver's plugin
words its answers (k8s.io/apiserver, admission/plugin/policy/validating):

- "ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s", in
  admission.NewForbidden's frame, with the validation's reason and its code;
- "failed expression: %v" when a validation gives no message;
- "expression '%v' resulted in error: %v" for an error, as ``failurePolicy`` says;
- "Validation failed for ValidatingAdmissionPolicy '%s' with binding '%s': %s" for Warn;
- the ``validation.policy.admission.k8s.io/validation_failure`` audit annotation for Audit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from falcon.testing import Result, TestClient

from handlers.api.users import User
from proxy import authz
from proxy.requestinfo import RequestInfo
from tests.app.test_crud import GV, post, status_of, task
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import (
    CONFIGMAPS,
    VALIDATING_POLICIES,
    VALIDATING_POLICY_BINDINGS,
)
from tests.support.clusterapp import cluster_app, eventually

TASKS = f"{GV}/namespaces/team/customtasks"
RULE = {
    "apiGroups": ["search.task.example.example.com"],
    "apiVersions": ["v1"],
    "operations": ["CREATE", "UPDATE"],
    "resources": ["customtasks", "clustertasks"],
}
AT_MOST_5 = "object.spec.priority <= 5"


def policy(fake: FakeCluster, name: str, validations: list[dict[str, Any]], **spec: Any) -> None:
    spec.setdefault("matchConstraints", {"resourceRules": [RULE]})
    fake.objects.put(
        VALIDATING_POLICIES,
        {"metadata": {"name": name}, "spec": {"validations": validations, **spec}},
    )


def bind(fake: FakeCluster, name: str, policy_name: str, actions: list[str], **spec: Any) -> None:
    fake.objects.put(
        VALIDATING_POLICY_BINDINGS,
        {
            "metadata": {"name": name},
            "spec": {"policyName": policy_name, "validationActions": actions, **spec},
        },
    )


def until_refused(client: TestClient, body: dict[str, Any], path: str = TASKS) -> Result:
    """The first answer refusing ``body`` once the server has seen the policy (each try
    that passes is deleted again)."""
    answers: list[Result] = []

    def refused() -> bool:
        answer = post(client, path, body)
        if answer.status_code == 201:
            client.simulate_delete(f"{path}/{body['metadata']['name']}")
        answers.append(answer)
        return answer.status_code >= 400

    eventually(refused, "refused")
    return answers[-1]


def high(name: str, priority: int = 7, **meta: Any) -> dict[str, Any]:
    body = task(name, **meta)
    body["spec"]["priority"] = priority
    return body


def test_a_deny_binding_refuses_a_create_and_a_patch_in_kubes_words(
    client: TestClient, fake: FakeCluster
) -> None:
    assert post(client, TASKS, high("before-patch", 3)).status_code == 201
    policy(fake, "max-priority", [{"expression": AT_MOST_5}])
    bind(fake, "max-priority-binding", "max-priority", ["Deny"])
    refused = until_refused(client, high("t"))
    assert status_of(refused) == (422, "Invalid")
    message = (
        'customtasks.search.task.example.example.com "t" is forbidden: ValidatingAdmissionPolicy '
        "'max-priority' with binding 'max-priority-binding' denied request: failed expression: "
        "object.spec.priority <= 5"
    )
    assert refused.json["message"] == message
    assert refused.json["details"]["causes"] == [{"message": message.split(" is forbidden: ")[1]}]
    assert client.simulate_get(f"{TASKS}/t").status_code == 404
    patched = client.simulate_patch(
        f"{TASKS}/before-patch",
        body=b'{"spec":{"priority":9}}',
        content_type="application/merge-patch+json",
    )
    assert status_of(patched) == (422, "Invalid")
    assert "failed expression: object.spec.priority <= 5" in patched.json["message"]
    assert client.simulate_get(f"{TASKS}/before-patch").json["spec"]["priority"] == 3
    assert post(client, TASKS, high("low", 5)).status_code == 201


def test_a_warn_binding_lets_the_write_through_with_a_warning(
    client: TestClient, fake: FakeCluster
) -> None:
    policy(fake, "max-priority", [{"expression": AT_MOST_5, "message": "priority too high"}])
    bind(fake, "warn", "max-priority", ["Warn"])

    def warned() -> bool:
        answer = post(client, TASKS, high("w"))
        assert answer.status_code == 201, answer.text
        client.simulate_delete(f"{TASKS}/w")
        return answer.headers.get("warning") == (
            "299 - \"Validation failed for ValidatingAdmissionPolicy 'max-priority' with binding "
            "'warn': priority too high\""
        )

    eventually(warned, "warned")


def test_an_audit_binding_records_the_annotation_in_the_request_log(
    client: TestClient, fake: FakeCluster, capfd: pytest.CaptureFixture[str]
) -> None:
    policy(fake, "max-priority", [{"expression": AT_MOST_5}])
    bind(fake, "audit", "max-priority", ["Audit"])
    eventually(lambda: bool(fake.objects.all(VALIDATING_POLICY_BINDINGS)), "bound")

    def audited() -> bool:
        capfd.readouterr()
        assert post(client, TASKS, high("a")).status_code == 201
        client.simulate_delete(f"{TASKS}/a")
        lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line]
        created = [line for line in lines if line.get("verb") == "create"]
        return bool(created and "annotations" in created[0])

    eventually(audited, "audited")
    capfd.readouterr()
    post(client, TASKS, high("b"))
    (line,) = [json.loads(x) for x in capfd.readouterr().out.splitlines() if '"create"' in x]
    recorded = json.loads(
        line["annotations"]["validation.policy.admission.k8s.io/validation_failure"]
    )
    assert recorded == [
        {
            "message": "failed expression: object.spec.priority <= 5",
            "policy": "max-priority",
            "binding": "audit",
            "expressionIndex": 0,
            "validationActions": ["Audit"],
        }
    ]


def test_a_param_kind_policy_reads_its_limit_from_a_configmap(
    client: TestClient, fake: FakeCluster
) -> None:
    policy(
        fake,
        "limit",
        [
            {
                "expression": "object.spec.priority <= int(params.data.maxPriority)",
                "messageExpression": "'priority must be at most ' + params.data.maxPriority",
                "reason": "Forbidden",
            }
        ],
        paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
    )
    bind(
        fake,
        "limit",
        "limit",
        ["Deny"],
        paramRef={"name": "limits", "parameterNotFoundAction": "Deny"},
    )
    missing = until_refused(client, high("p", 1))
    assert status_of(missing) == (403, "Forbidden")
    assert missing.json["message"].endswith(
        "denied request: failed to configure binding: no params found for policy binding with "
        "`Deny` parameterNotFoundAction"
    )
    fake.objects.put(
        CONFIGMAPS,
        {"metadata": {"name": "limits", "namespace": "team"}, "data": {"maxPriority": "4"}},
    )
    eventually(lambda: post(client, TASKS, high("p", 1)).status_code == 201, "admitted")
    refused = post(client, TASKS, high("q", 6))
    assert status_of(refused) == (403, "Forbidden")
    assert refused.json["message"].endswith("denied request: priority must be at most 4")
    lab = post(client, f"{GV}/namespaces/lab/customtasks", high("r", 1))
    assert status_of(lab) == (403, "Forbidden")  # the ConfigMap is looked for in lab


def test_namespace_object_and_object_selector(client: TestClient, fake: FakeCluster) -> None:
    policy(
        fake,
        "gold-only-high",
        [{"expression": "namespaceObject.metadata.labels.tier == 'gold' || " + AT_MOST_5}],
        matchConstraints={
            "resourceRules": [RULE],
            "objectSelector": {"matchLabels": {"checked": "yes"}},
        },
    )
    bind(fake, "b", "gold-only-high", ["Deny"])
    lab = f"{GV}/namespaces/lab/customtasks"
    until_refused(client, high("x", labels={"checked": "yes"}), lab)
    assert post(client, lab, high("unlabelled")).status_code == 201  # not selected
    assert post(client, TASKS, high("gold", labels={"checked": "yes"})).status_code == 201


def test_deleting_the_binding_stops_the_policy_within_a_second(
    client: TestClient, fake: FakeCluster
) -> None:
    policy(fake, "max-priority", [{"expression": AT_MOST_5}])
    bind(fake, "b", "max-priority", ["Deny"])
    until_refused(client, high("t"))
    fake.objects.delete(VALIDATING_POLICY_BINDINGS, "", "b")
    eventually(lambda: post(client, TASKS, high("t")).status_code == 201, "admitted", timeout=1.0)


@pytest.mark.parametrize("failure_policy", ["Fail", "Ignore"])
def test_a_runtime_error_follows_the_failure_policy(
    client: TestClient, fake: FakeCluster, failure_policy: str
) -> None:
    policy(
        fake,
        "broken",
        [{"expression": "object.spec.missing == 1"}, {"expression": AT_MOST_5}],
        failurePolicy=failure_policy,
    )
    bind(fake, "b", "broken", ["Deny"])
    if failure_policy == "Fail":
        refused = until_refused(client, high("e", 1))
        assert status_of(refused) == (403, "Forbidden")
        assert refused.json["message"].endswith(
            "denied request: expression 'object.spec.missing == 1' resulted in error: "
            "no such key: missing"
        )
    else:  # the error is ignored; the other validation still holds
        refused = until_refused(client, high("e", 7))
        assert "failed expression: object.spec.priority <= 5" in refused.json["message"]
        assert post(client, TASKS, high("e", 1)).status_code == 201


def test_an_expression_that_does_not_compile_fails_the_policy_with_its_error(
    client: TestClient, fake: FakeCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """kube's runtime words ("compilation error: compilation failed: ERROR: ..."), and in the
    log the field error kube's registry would have refused the policy with."""
    policy(fake, "typo", [{"expression": "object.spec.priority <="}])
    bind(fake, "b", "typo", ["Deny"])
    refused = until_refused(client, high("c", 1))
    assert status_of(refused) == (403, "Forbidden")
    message = refused.json["message"]
    assert "denied request: compilation error: compilation failed: ERROR: <input>:1:" in message
    assert "Syntax error" in refused.json["message"]
    assert any(
        r.getMessage().startswith(
            'ValidatingAdmissionPolicy "typo" is invalid: spec.validations[0].expression: '
            'Invalid value: "object.spec.priority <=": compilation failed: ERROR: <input>:1:'
        )
        for r in caplog.records
    )


def test_dry_run_is_admitted_as_a_write_and_stores_nothing(
    client: TestClient, fake: FakeCluster
) -> None:
    policy(fake, "no-dry", [{"expression": "!request.dryRun", "message": "no dry runs"}])
    bind(fake, "b", "no-dry", ["Deny"])
    eventually(
        lambda: post(client, TASKS, task("d"), params={"dryRun": "All"}).status_code == 422,
        "refused",
    )
    assert client.simulate_get(f"{TASKS}/d").status_code == 404
    assert post(client, TASKS, task("d")).status_code == 201


def test_the_status_subresource_is_matched_by_resource_slash_status(
    client: TestClient, fake: FakeCluster
) -> None:
    assert post(client, TASKS, task("s")).status_code == 201
    rule = {**RULE, "resources": ["customtasks/status"]}
    policy(
        fake,
        "status-only",
        [{"expression": "request.subResource == 'status' && !has(object.status.bad)"}],
        matchConstraints={"resourceRules": [rule]},
    )
    bind(fake, "b", "status-only", ["Deny"])

    def status_patch(value: Any) -> Result:
        return client.simulate_patch(
            f"{TASKS}/s/status",
            body=orjson.dumps({"status": {"bad": value}}),
            content_type="application/merge-patch+json",
        )

    eventually(lambda: status_patch(True).status_code == 422, "refused")
    main = client.simulate_patch(
        f"{TASKS}/s",
        body=b'{"metadata":{"labels":{"x":"y"}}}',
        content_type="application/merge-patch+json",
    )
    assert main.status_code == 200, main.text  # the resource itself is not matched


def test_a_delete_is_admitted_with_the_old_object(client: TestClient, fake: FakeCluster) -> None:
    assert post(client, TASKS, high("keep", 9)).status_code == 201
    assert post(client, TASKS, high("go", 1)).status_code == 201
    policy(
        fake,
        "no-delete-urgent",
        [{"expression": "object == null && oldObject.spec.priority < 8"}],
        matchConstraints={"resourceRules": [{**RULE, "operations": ["DELETE"]}]},
    )
    bind(fake, "b", "no-delete-urgent", ["Deny"])

    def refused() -> bool:
        post(client, TASKS, high("probe", 9))  # again, while the policy is not seen yet
        return client.simulate_delete(f"{TASKS}/probe").status_code == 422

    eventually(refused, "refused")
    denied = client.simulate_delete(f"{TASKS}/keep")
    assert status_of(denied) == (422, "Invalid")
    assert denied.json["message"] == (
        'customtasks.search.task.example.example.com "keep" is forbidden: '
        "ValidatingAdmissionPolicy 'no-delete-urgent' with binding 'b' denied request: "
        "failed expression: object == null && oldObject.spec.priority < 8"
    )
    assert client.simulate_delete(f"{TASKS}/go").status_code == 200
    collection = client.simulate_delete(TASKS)
    assert status_of(collection) == (422, "Invalid")  # each object of it is admitted
    assert client.simulate_get(f"{TASKS}/keep").status_code == 200


def test_variables_and_the_requests_user(client: TestClient, fake: FakeCluster) -> None:
    policy(
        fake,
        "named",
        [{"expression": "variables.anonymous ? variables.low : true"}],
        variables=[
            {"name": "anonymous", "expression": "request.userInfo.username == 'system:anonymous'"},
            {"name": "low", "expression": "object.spec.priority < 2"},
        ],
    )
    bind(fake, "b", "named", ["Deny"])
    until_refused(client, high("v", 3))
    assert post(client, TASKS, high("v", 1)).status_code == 201


def test_a_match_condition_that_is_false_skips_the_policy(
    client: TestClient, fake: FakeCluster
) -> None:
    policy(
        fake,
        "only-labelled",
        [{"expression": AT_MOST_5}],
        matchConditions=[{"name": "labelled", "expression": "'strict' in object.metadata.labels"}],
    )
    bind(fake, "b", "only-labelled", ["Deny"])
    until_refused(client, high("strict", labels={"strict": "1"}))
    assert post(client, TASKS, high("lax", labels={"other": "1"})).status_code == 201


class SecretsDenied:
    """Allows everything but Secrets; records what it is asked."""

    def __init__(self) -> None:
        self.asked: list[RequestInfo] = []

    def authorize(self, user: User, info: RequestInfo) -> authz.Decision:
        self.asked.append(info)
        if info.resource == "secrets":
            return authz.Decision(False, "no secrets here")
        return authz.Decision(True)


def test_the_authorizer_asks_for_the_requesting_user(fake: FakeCluster, tmp_path: Path) -> None:
    secrets = "authorizer.group('').resource('secrets').namespace('team').name('db').check('get')"
    policy(
        fake,
        "secret-readers-only",
        [
            {
                "expression": f"{secrets}.allowed() || {AT_MOST_5}",
                "messageExpression": f"{secrets}.reason()",
            }
        ],
    )
    bind(fake, "b", "secret-readers-only", ["Deny"])
    decider = SecretsDenied()
    with cluster_app(fake, tmp_path, authorizer=decider) as client:
        refused = until_refused(client, high("h"))
        assert refused.json["message"].endswith(
            'denied request: secrets "db" is forbidden: User "system:anonymous" cannot get '
            'resource "secrets" in API group "" in the namespace "team": no secrets here'
        )
        (asked,) = {
            (i.verb, i.group, i.resource, i.namespace, i.name, i.subresource)
            for i in decider.asked
            if i.resource == "secrets"
        }
        assert asked == ("get", "", "secrets", "team", "db", None)
        assert post(client, TASKS, high("low", 2)).status_code == 201
