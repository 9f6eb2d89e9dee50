"""R12 admission webhooks: the cluster's Mutating- and ValidatingWebhookConfigurations
(admissionregistration.k8s.io/v1, read from the fake cluster through list+watch) called for
writes of our kinds as kube-apiserver calls them, against real HTTPS webhooks with their own
CA. kube's words (k8s.io/apiserver, admission/plugin/webhook): "admission webhook %q denied
the request: %s" (ToStatusErr, the webhook's Status kept, never a code below 400), "failed
calling webhook %q: %v" (an InternalError when failurePolicy is Fail), "admission webhook %q
does not support dry run" (a BadRequest)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from falcon.testing import Result, TestClient

from handlers.admission.calls import Endpoint
from tests.app.test_crud import GV, post, status_of, task
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS
from tests.fakes.webhooks import FakeWebhook, json_patch
from tests.support.clusterapp import eventually

TASKS = f"{GV}/namespaces/team/customtasks"
RULE = {
    "apiGroups": ["search.task.example.example.com"],
    "apiVersions": ["v1"],
    "operations": ["CREATE", "UPDATE"],
    "resources": ["customtasks", "customtasks/status"],
}
MERGE = "application/merge-patch+json"


@pytest.fixture
def webhook() -> Iterator[FakeWebhook]:
    with FakeWebhook() as server:
        yield server


def configure(
    fake: FakeCluster, webhook: FakeWebhook, name: str, *, mutating: bool = False, **hook: Any
) -> None:
    """One webhook, named ``<name>.example.com``, in a configuration named ``name``."""
    entry = {
        "name": f"{name}.example.com",
        "clientConfig": webhook.client_config(f"/{name}"),
        "rules": [RULE],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        **hook,
    }
    kind = MUTATING_WEBHOOKS if mutating else VALIDATING_WEBHOOKS
    fake.objects.put(kind, {"metadata": {"name": name}, "webhooks": [entry]})


def priority_9_refused(request: dict[str, Any]) -> dict[str, Any]:
    if (request.get("object") or {}).get("spec", {}).get("priority") == 9:
        return {"allowed": False, "status": {"code": 403, "message": "priority 9 is reserved"}}
    return {"allowed": True}


def high(name: str, priority: int = 9, **meta: Any) -> dict[str, Any]:
    body = task(name, **meta)
    body["spec"]["priority"] = priority
    return body


def until(client: TestClient, body: dict[str, Any], code: int, path: str = TASKS) -> Result:
    """The first answer with ``code`` once the server has seen the configuration (each
    try that created the object deletes it again)."""
    answers: list[Result] = []

    def seen() -> bool:
        answer = post(client, path, body)
        if answer.status_code == 201 and code != 201:
            client.simulate_delete(f"{path}/{body['metadata']['name']}")
        answers.append(answer)
        return answer.status_code == code

    eventually(seen, f"answered {code}")
    return answers[-1]


def until_called(client: TestClient, webhook: FakeWebhook) -> None:
    """Write until the server has seen the configuration and called ``webhook``."""

    def called() -> bool:
        answer = post(client, TASKS, high("probe", 3))
        assert answer.status_code == 201, answer.text
        client.simulate_delete(f"{TASKS}/probe")
        return bool(webhook.requests())

    eventually(called, "called")


def patch(client: TestClient, name: str, body: dict[str, Any], sub: str = "") -> Result:
    path = f"{TASKS}/{name}" + (f"/{sub}" if sub else "")
    return client.simulate_patch(path, body=orjson.dumps(body), content_type=MERGE)


def test_a_validating_webhook_refuses_a_create_an_update_and_a_patch(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    assert post(client, TASKS, high("kept", 3)).status_code == 201
    webhook.decide = priority_9_refused
    configure(fake, webhook, "deny")
    refused = until(client, high("t"), 403)
    message = 'admission webhook "deny.example.com" denied the request: priority 9 is reserved'
    assert refused.json["message"] == message
    assert refused.json["reason"] == ""  # the webhook's own Status: it gave no reason
    assert client.simulate_get(f"{TASKS}/t").status_code == 404
    stored = client.simulate_get(f"{TASKS}/kept").json
    stored["spec"]["priority"] = 9
    put = client.simulate_put(f"{TASKS}/kept", body=orjson.dumps(stored))
    assert (put.status_code, put.json["message"]) == (403, message)
    patched = patch(client, "kept", {"spec": {"priority": 9}})
    assert (patched.status_code, patched.json["message"]) == (403, message)
    assert client.simulate_get(f"{TASKS}/kept").json["spec"]["priority"] == 3

    review = webhook.requests()[-1]
    assert review["operation"] == "UPDATE" and review["oldObject"]["spec"]["priority"] == 3
    assert review["object"]["spec"]["priority"] == 9
    assert review["kind"] == {
        "group": "search.task.example.example.com",
        "version": "v1",
        "kind": "CustomTask",
    }
    assert review["resource"]["resource"] == "customtasks"
    assert (review["name"], review["namespace"], review["dryRun"]) == ("kept", "team", False)
    assert review["userInfo"]["username"] == "system:anonymous"
    assert review["options"]["kind"] == "UpdateOptions"
    assert len({r["uid"] for r in webhook.requests()}) == len(webhook.requests())


def test_a_webhooks_status_keeps_its_code_and_reason_and_a_refusal_without_words(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    webhook.decide = lambda request: {
        "allowed": False,
        "status": {"code": 422, "reason": "Invalid", "message": "no"},
    }
    configure(fake, webhook, "strict")
    refused = until(client, high("t"), 422)
    assert status_of(refused) == (422, "Invalid")
    webhook.decide = lambda request: {"allowed": False, "status": {"code": 200}}
    bare = post(client, TASKS, high("u"))
    assert bare.status_code == 403  # never a code below 400 with a refusal
    assert bare.json["message"] == (
        'admission webhook "strict.example.com" denied the request without explanation'
    )


def created_once_seen(client: TestClient, body: dict[str, Any], seen: Any) -> Result:
    """A create answered once ``seen(answer)`` (each earlier one deleted again)."""
    answers: list[Result] = []

    def done() -> bool:
        answer = post(client, TASKS, body)
        assert answer.status_code == 201, answer.text
        answers.append(answer)
        if seen(answer):
            return True
        client.simulate_delete(f"{TASKS}/{body['metadata']['name']}")
        return False

    eventually(done, "the configuration applied")
    return answers[-1]


def labels_of(answer: Result) -> dict[str, str]:
    labels: dict[str, str] = answer.json["metadata"].get("labels") or {}
    return labels


def test_a_mutating_webhook_patches_and_the_object_is_then_checked(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    webhook.decide = lambda request: json_patch(
        [{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}]
    )
    configure(fake, webhook, "label", mutating=True)
    created_once_seen(client, high("m", 3), lambda answer: labels_of(answer) == {"mutated": "yes"})
    assert client.simulate_get(f"{TASKS}/m").json["metadata"]["labels"] == {"mutated": "yes"}

    webhook.decide = lambda request: json_patch(
        [{"op": "replace", "path": "/spec/priority", "value": "urgent"}]
    )
    invalid = post(client, TASKS, high("n", 3))
    assert status_of(invalid) == (422, "Invalid")  # the patched object fails the schema
    assert "spec.priority" in invalid.json["message"]


def test_a_webhook_asking_for_it_is_called_again_after_a_later_change(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    with FakeWebhook() as second:
        second.decide = lambda request: json_patch(
            [{"op": "add", "path": "/metadata/labels", "value": {"second": "yes"}}]
        )
        configure(fake, webhook, "a-first", mutating=True, reinvocationPolicy="IfNeeded")
        configure(fake, second, "b-second", mutating=True)
        created_once_seen(
            client,
            high("r", 3),
            lambda answer: (
                labels_of(answer) == {"second": "yes"}
                and any(r["name"] == "r" for r in webhook.requests())
            ),
        )
        first_calls = [r for r in webhook.requests() if r["name"] == "r"]
        second_calls = [r for r in second.requests() if r["name"] == "r"]
        assert second_calls  # the last create: first, second, then first again
        assert "labels" not in second_calls[-1]["object"]["metadata"]
        assert "labels" not in first_calls[-2]["object"]["metadata"]
        assert first_calls[-1]["object"]["metadata"]["labels"] == {"second": "yes"}


def test_warnings_become_warning_headers(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    webhook.decide = lambda request: {"allowed": True, "warnings": ["priority is high"]}
    configure(fake, webhook, "warn")

    def warned() -> bool:
        answer = post(client, TASKS, high("w"))
        client.simulate_delete(f"{TASKS}/w")
        return answer.headers.get("warning") == '299 - "priority is high"'

    eventually(warned, "warned")


def test_namespace_and_object_selectors_and_match_conditions(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    webhook.decide = lambda request: {"allowed": False}
    configure(
        fake,
        webhook,
        "picky",
        namespaceSelector={"matchLabels": {"tier": "gold"}},
        objectSelector={"matchExpressions": [{"key": "checked", "operator": "Exists"}]},
        matchConditions=[{"name": "high", "expression": "object.spec.priority > 5"}],
    )
    until(client, high("x", labels={"checked": "1"}), 403)
    assert post(client, TASKS, high("unlabelled")).status_code == 201
    assert post(client, TASKS, high("low", 2, labels={"checked": "1"})).status_code == 201
    lab = f"{GV}/namespaces/lab/customtasks"
    assert post(client, lab, high("elsewhere", labels={"checked": "1"})).status_code == 201
    assert {r["name"] for r in webhook.requests()} == {"x"}  # only what every test passed


@pytest.mark.parametrize("fault", ["timeout", "unreachable", "malformed", "wrong uid"])
@pytest.mark.parametrize("failure_policy", ["Fail", "Ignore"])
def test_a_webhook_without_a_usable_answer_follows_its_failure_policy(
    client: TestClient,
    fake: FakeCluster,
    webhook: FakeWebhook,
    fault: str,
    failure_policy: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = webhook.client_config("/faulty")
    if fault == "timeout":
        webhook.delay = 1.5
    elif fault == "unreachable":
        config = {**config, "url": "https://127.0.0.1:9/faulty"}  # nothing listens there
    elif fault == "malformed":
        webhook.malformed = True
    else:
        webhook.wrong_uid = True
    configure(
        fake, webhook, "faulty", clientConfig=config, timeoutSeconds=1, failurePolicy=failure_policy
    )
    if failure_policy == "Ignore":  # each write goes through, and the failure is logged

        def failed_open() -> bool:
            caplog.clear()
            assert post(client, TASKS, high("through")).status_code == 201
            client.simulate_delete(f"{TASKS}/through")
            return any(
                'failed calling webhook "faulty.example.com"' in r.getMessage()
                and "failing open" in r.getMessage()
                for r in caplog.records
            )

        eventually(failed_open, "failed open")
        return
    refused = until(client, high("t"), 500)
    assert status_of(refused) == (500, "InternalError")
    prefix = 'Internal error occurred: failed calling webhook "faulty.example.com": '
    message = refused.json["message"]
    assert message.startswith(prefix), message
    reason = message.removeprefix(prefix)
    url = f"{config['url']}?timeout=1s"
    expected = {
        "timeout": f'Post "{url}": context deadline exceeded',
        "unreachable": f'Post "{url}": dial tcp 127.0.0.1:9: connect: connection refused',
        "wrong uid": "received invalid webhook response: expected response.uid=",
        "malformed": "received invalid webhook response: ",
    }[fault]
    assert reason.startswith(expected), reason


def test_dry_run_needs_a_webhook_without_side_effects(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    configure(fake, webhook, "unknown", sideEffects="Unknown")
    eventually(
        lambda: post(client, TASKS, task("d"), params={"dryRun": "All"}).status_code == 400,
        "refused",
    )
    refused = post(client, TASKS, task("d"), params={"dryRun": "All"})
    assert (
        refused.json["message"]
        == 'admission webhook "unknown.example.com" does not support dry run'
    )
    fake.objects.delete(VALIDATING_WEBHOOKS, "", "unknown")
    configure(fake, webhook, "none", sideEffects="None")

    def called() -> bool:
        answer = post(client, TASKS, task("d"), params={"dryRun": "All"})
        assert answer.status_code in (201, 400), answer.text
        return any(r["dryRun"] for r in webhook.requests())

    eventually(called, "called with dryRun")
    assert client.simulate_get(f"{TASKS}/d").status_code == 404


def test_a_delete_is_sent_with_the_old_object_and_status_with_its_subresource(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    assert post(client, TASKS, high("s", 3)).status_code == 201
    configure(fake, webhook, "all", rules=[{**RULE, "operations": ["*"]}])

    def deleted_after_seen() -> bool:
        post(client, TASKS, high("probe", 3))
        client.simulate_delete(f"{TASKS}/probe")
        return any(r["operation"] == "DELETE" for r in webhook.requests())

    eventually(deleted_after_seen, "a delete sent")
    (gone,) = [r for r in webhook.requests() if r["operation"] == "DELETE"][:1]
    assert gone["object"] is None and gone["oldObject"]["metadata"]["name"] == "probe"
    assert gone["options"]["kind"] == "DeleteOptions"
    assert patch(client, "s", {"status": {"phase": "x"}}, "status").status_code == 200
    status = [r for r in webhook.requests() if r["name"] == "s"][-1]
    assert status["subResource"] == "status" and status["requestSubResource"] == "status"


def test_a_webhook_added_while_serving_applies_to_the_next_request(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    assert post(client, TASKS, high("before")).status_code == 201
    webhook.decide = priority_9_refused
    configure(fake, webhook, "late")
    eventually(lambda: post(client, TASKS, high("after")).status_code == 403, "applied", 1.0)


def test_validating_webhooks_are_called_at_once(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    """The first answers only once the second has been called: called one after the other,
    the first would wait out its timeout and fail the write."""
    second_called = threading.Event()

    def first(request: dict[str, Any]) -> dict[str, Any]:
        return {"allowed": second_called.wait(5)}

    def second(request: dict[str, Any]) -> dict[str, Any]:
        second_called.set()
        return {"allowed": True}

    with FakeWebhook(second) as other:
        webhook.decide = first
        configure(fake, webhook, "a-waits", timeoutSeconds=10)
        configure(fake, other, "b-unblocks", timeoutSeconds=10)

        def both_seen() -> bool:
            second_called.clear()
            answer = post(client, TASKS, high("p", 3))
            assert answer.status_code in (201, 403), answer.text
            client.simulate_delete(f"{TASKS}/p")
            return answer.status_code == 201 and bool(other.requests()) and bool(webhook.requests())

        eventually(both_seen, "both called", 20)


def test_one_connection_per_webhook_is_reused(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    configure(fake, webhook, "reused")
    until_called(client, webhook)
    before = webhook.connections
    for n in range(5):
        assert post(client, TASKS, high(f"more-{n}", 3)).status_code == 201
    assert len(webhook.requests()) >= 6
    assert webhook.connections == before  # every call on the connection already open


def test_the_review_version_is_negotiated(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    configure(fake, webhook, "old", admissionReviewVersions=["v1beta1"])
    until_called(client, webhook)
    assert webhook.reviews[-1]["apiVersion"] == "admission.k8s.io/v1beta1"
    configure(fake, webhook, "future", admissionReviewVersions=["v2"])
    refused = until(client, high("f", 3), 500)
    assert refused.json["message"] == (
        'Internal error occurred: failed calling webhook "future.example.com": webhook does not '
        "accept known AdmissionReview versions"
    )


def test_a_new_ca_bundle_applies_without_a_restart(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    with FakeWebhook() as stranger:  # its CA did not sign the webhook's certificate
        wrong = {**webhook.client_config("/rotated"), "caBundle": stranger.ca_bundle}
    configure(fake, webhook, "rotated", clientConfig=wrong)
    refused = until(client, high("c", 3), 500)
    assert refused.json["message"].endswith(
        "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    )
    fixed = fake.objects.read(VALIDATING_WEBHOOKS, "", "rotated")
    fixed["webhooks"][0]["clientConfig"] = webhook.client_config("/rotated")
    fake.objects.update(VALIDATING_WEBHOOKS, "", "rotated", fixed)
    until(client, high("c", 3), 201)


def test_a_slow_webhook_is_cut_at_the_requests_deadline(
    client: TestClient, fake: FakeCluster, webhook: FakeWebhook
) -> None:
    """A webhook given 10 s, answering in 3, on a request due in 1: the call ends at the
    deadline and nothing is stored (had it been waited for, its yes would have stored the
    object behind the 504)."""
    configure(fake, webhook, "slow", timeoutSeconds=10)
    until_called(client, webhook)
    webhook.delay = 3.0
    answer = post(client, TASKS, high("late", 3), params={"timeout": "1s"})
    assert answer.status_code in (500, 504), answer.text
    webhook.delay = 0.0
    assert client.simulate_get(f"{TASKS}/late").status_code == 404


def test_a_service_reference_is_its_cluster_name() -> None:
    endpoint = Endpoint.of(
        {"service": {"namespace": "policy", "name": "gatekeeper", "path": "/v1/admit"}}
    )
    assert endpoint.url == "https://gatekeeper.policy.svc:443/v1/admit"
    assert Endpoint.of({"service": {"namespace": "n", "name": "s", "port": 8443}}).url == (
        "https://s.n.svc:8443"
    )


def test_audit_annotations_go_to_the_request_log(
    client: TestClient,
    fake: FakeCluster,
    webhook: FakeWebhook,
    capfd: pytest.CaptureFixture[str],
) -> None:
    webhook.decide = lambda request: {"allowed": True, "auditAnnotations": {"checked": "yes"}}
    configure(fake, webhook, "audit")
    until_called(client, webhook)
    capfd.readouterr()
    assert post(client, TASKS, high("a", 3)).status_code == 201
    (line,) = [json.loads(x) for x in capfd.readouterr().out.splitlines() if '"verb":"create"' in x]
    assert line["annotations"] == {"audit.example.com/checked": "yes"}
