"""R12 admission with every kubectl: the README's ValidatingAdmissionPolicy, applied with
kubectl to the cluster the server reads, refuses a customtask in kube's words; bound with
``Warn`` instead, the write goes through and kubectl prints the policy's warning;
NamespaceLifecycle's refusal and a validating webhook's read as kube-apiserver's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.certs import new_ca
from tests.fakes.cluster import FakeCluster, authentication_data
from tests.fakes.objects import NAMESPACES, VALIDATING_POLICY_BINDINGS, VALIDATING_WEBHOOKS
from tests.fakes.webhooks import FakeWebhook
from tests.support.clusterapp import eventually
from tests.support.kubectl import BINARIES, Kubectl
from tests.support.servers import ROOT, Pki, Server, run_server

NEWEST = max(BINARIES, key=lambda v: tuple(int(p) for p in v.split(".")))


def readme_policy() -> str:
    """The YAML block of the README's "A policy for customtasks"."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### A policy for customtasks", 1)[1]
    found = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert found, "the README's policy example"
    return found.group(1)


@dataclass
class Setup:
    server: Server
    cluster: FakeCluster
    directory: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("admission")
    pki = Pki.create(directory / "pki")
    with FakeCluster() as cluster:
        cluster.configmap = authentication_data(pki.ca.cert_pem, new_ca("fp").cert_pem)
        for namespace in ("team", "going"):
            cluster.objects.put(NAMESPACES, {"metadata": {"name": namespace}})
        cluster.objects.delete(NAMESPACES, "", "going")  # Terminating, for its finalizer
        env = {"APISERVER_KUBECONFIG": str(cluster.kubeconfig(directory / "cluster"))}
        with run_server(directory, pki=pki, env=env) as server:
            # the administrator applies the README's policy to the cluster with kubectl
            policy = directory / "policy.yaml"
            policy.write_text(readme_policy())
            admin = Kubectl(NEWEST, BINARIES[NEWEST], str(directory / "cluster"), directory, server)
            admin.ok("apply", "--validate=false", "-f", str(policy))
            yield Setup(server, cluster, directory)


@pytest.fixture(params=list(BINARIES))
def kubectl(request: pytest.FixtureRequest, setup: Setup, tmp_path: Path) -> Kubectl:
    version: str = request.param
    server = setup.server
    return Kubectl(version, BINARIES[version], server.kubeconfig(), tmp_path, server)


def urgent(name: str, details: str = "") -> dict[str, object]:
    spec: dict[str, object] = {"priority": 8, "deadline": "2030-01-01T00:00:00Z"}
    if details:
        spec["details"] = details
    return {
        "apiVersion": "search.task.example.example.com/v1",
        "kind": "CustomTask",
        "metadata": {"name": name},
        "spec": spec,
    }


def set_actions(cluster: FakeCluster, actions: list[str]) -> None:
    binding = cluster.objects.read(VALIDATING_POLICY_BINDINGS, "", "customtask-priority")
    binding["spec"]["validationActions"] = actions
    cluster.objects.update(VALIDATING_POLICY_BINDINGS, "", "customtask-priority", binding)


def test_the_readme_policy_refuses_and_warns_through_kubectl(
    kubectl: Kubectl, setup: Setup
) -> None:
    set_actions(setup.cluster, ["Deny"])
    name = f"urgent-{kubectl.tag}"
    manifest = kubectl.write(f"{name}.yaml", urgent(name))
    message = (
        "ValidatingAdmissionPolicy 'customtask-priority' with binding 'customtask-priority' "
        "denied request: priority 8 needs details"
    )

    def denied() -> bool:
        result = kubectl.run("create", "-n", "team", "-f", manifest)
        return message in result.stderr

    eventually(denied, "denied")
    out = kubectl.fails("create", "-n", "team", "-f", manifest)
    # kubectl words a 422 from its details (kind: the resource, as admission.NewForbidden
    # sets it) and its causes (one, with no field): as it words kube-apiserver's
    assert out == f'The customtasks "{name}" is invalid: : {message}\n'
    with_details = kubectl.write(f"{name}-ok.yaml", urgent(f"{name}-ok", "why it is urgent"))
    kubectl.ok("create", "-n", "team", "-f", with_details)

    set_actions(setup.cluster, ["Warn"])
    warning = (
        "Warning: Validation failed for ValidatingAdmissionPolicy 'customtask-priority' with "
        "binding 'customtask-priority': priority 8 needs details"
    )

    def warned() -> bool:
        result = kubectl.run("create", "-n", "team", "-f", manifest)
        if result.returncode == 0:
            assert warning in result.stderr, result.stderr
            return True
        return False

    eventually(warned, "warned")
    assert name in kubectl.ok("get", "customtasks", "-n", "team", "-o", "name")


def test_a_terminating_namespace_refuses_new_content_as_kube_does(kubectl: Kubectl) -> None:
    name = f"late-{kubectl.tag}"
    task = urgent(name, "late")
    out = kubectl.fails("create", "-n", "going", "-f", kubectl.write(f"{name}.yaml", task))
    assert (
        f'Error from server (Forbidden): error when creating "{kubectl.workdir}/{name}.yaml": '
        f'customtasks.search.task.example.example.com "{name}" is forbidden: unable to create '
        "new content in namespace going because it is being terminated"
    ) in out
    out = kubectl.fails("create", "-n", "nowhere", "-f", kubectl.write("x.yaml", task))
    assert "Error from server (NotFound): error when creating" in out
    assert 'namespaces "nowhere" not found' in out


@pytest.fixture(scope="module")
def refusing(setup: Setup) -> Iterator[FakeWebhook]:
    """A validating webhook refusing priority 9, configured in the cluster."""

    def decide(request: dict[str, Any]) -> dict[str, Any]:
        if (request.get("object") or {}).get("spec", {}).get("priority") == 9:
            return {"allowed": False, "status": {"code": 403, "message": "priority 9 is reserved"}}
        return {"allowed": True}

    with FakeWebhook(decide) as webhook:
        hook = {
            "name": "reserved.example.com",
            "clientConfig": webhook.client_config("/reserved"),
            "rules": [
                {
                    "apiGroups": ["search.task.example.example.com"],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["customtasks"],
                }
            ],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        }
        setup.cluster.objects.put(
            VALIDATING_WEBHOOKS, {"metadata": {"name": "reserved"}, "webhooks": [hook]}
        )
        yield webhook


def test_a_validating_webhooks_refusal_through_kubectl(
    kubectl: Kubectl, refusing: FakeWebhook
) -> None:
    name = f"nine-{kubectl.tag}"
    task = urgent(name, "the reason")
    task["spec"] = {**task["spec"], "priority": 9}  # type: ignore[dict-item]
    manifest = kubectl.write(f"{name}.yaml", task)
    message = 'admission webhook "reserved.example.com" denied the request: priority 9 is reserved'
    eventually(
        lambda: message in kubectl.run("create", "-n", "team", "-f", manifest).stderr, "refused"
    )
    out = kubectl.fails("create", "-n", "team", "-f", manifest)
    assert out == f'Error from server: error when creating "{manifest}": {message}\n'
    assert any(r["name"] == name for r in refusing.requests())
