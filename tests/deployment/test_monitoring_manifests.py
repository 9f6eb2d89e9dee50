"""The monitoring component: a ServiceMonitor, the RBAC of a scrape, an audit policy and a
PodMonitor for the Task controller.

It is in no overlay, so each test renders it in one of its own, written beside a copy of the
manifests, over the base and the cert-manager component (and the postgres one, in either order,
as it removes the store's volume by index). The ServiceMonitor and the PodMonitor validate
against their CRDs' schemas kept in tests/schemas (prometheus-operator's, with their
``x-kubernetes-*`` keys, which jsonschema ignores).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no py.typed, no stubs
import kubernetes_validate
import pytest
import yaml

from tests.support.kustomize import Docs, render
from tests.support.servers import ROOT

MANIFESTS = ROOT / "k8s" / "manifests"
SCHEMA = ROOT / "tests" / "schemas" / "servicemonitor-v1.json"
POD_MONITOR_SCHEMA = ROOT / "tests" / "schemas" / "podmonitor-v1.json"
NAMESPACE, SERVICE, DEPLOYMENT = "task-search", "task-search-api", "task-search-api"
CONTROLLER = "task-controller"  # the controller's Deployment and its PodMonitor
POLICY_FILE = "/etc/task-apiserver/audit/policy.yaml"
AUDIT_LEVELS = {"None", "Metadata", "Request", "RequestResponse"}
AUDIT_STAGES = {"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"}
KUBERNETES = "1.33.0"
CUSTOM = ("cert-manager.io/v1", "monitoring.coreos.com/v1")  # no schema in kubernetes-validate
OVERLAYS = {
    "sqlite": ("cert-manager", "monitoring"),
    "postgres": ("postgres", "cert-manager", "monitoring"),
    "postgres-after": ("monitoring", "postgres", "cert-manager"),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Docs]:
    """Each overlay of :data:`OVERLAYS`, in the copy's overlays directory (kustomize loads
    no file outside an overlay's root and no absolute root)."""
    copy = tmp_path_factory.mktemp("manifests") / "manifests"
    shutil.copytree(MANIFESTS, copy, ignore=shutil.ignore_patterns("local"))
    docs = {}
    for name, components in OVERLAYS.items():
        overlay = copy / "overlays" / f"test-monitoring-{name}"
        overlay.mkdir()
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["../../base"],
            "components": [f"../../components/{component}" for component in components],
        }
        (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        docs[name] = render(overlay)
    return docs


@pytest.fixture
def sqlite(rendered: dict[str, Docs]) -> Docs:
    return rendered["sqlite"]


def one(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def named(docs: Docs, kind: str, prefix: str) -> dict[str, Any]:
    """The object of a generator: its name has a hash suffix."""
    (found,) = [
        d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(f"{prefix}-")
    ]
    return found


def pod_spec(docs: Docs) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "Deployment", DEPLOYMENT)["spec"]["template"]["spec"]
    return spec


def service_monitor(docs: Docs) -> dict[str, Any]:
    return one(docs, "ServiceMonitor", SERVICE)


def endpoint(docs: Docs) -> dict[str, Any]:
    (found,) = service_monitor(docs)["spec"]["endpoints"]
    assert isinstance(found, dict)
    return found


def pod_monitor(docs: Docs) -> dict[str, Any]:
    return one(docs, "PodMonitor", CONTROLLER)


def pod_endpoint(docs: Docs) -> dict[str, Any]:
    (found,) = pod_monitor(docs)["spec"]["podMetricsEndpoints"]
    assert isinstance(found, dict)
    return found


# rendering


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_component_renders_and_validates_against_the_kubernetes_schemas(
    rendered: dict[str, Docs], overlay: str
) -> None:
    docs = rendered[overlay]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("ServiceMonitor", SERVICE) in kinds
    assert ("PodMonitor", CONTROLLER) in kinds
    assert ("ClusterRole", "task-search-api:metrics") in kinds
    for doc in docs:
        if doc["apiVersion"] in CUSTOM:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{overlay}: {doc['kind']} {doc['metadata']['name']}: {error}")


# the audit policy


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_deployment_mounts_the_audit_policy_and_names_it_and_stdout(
    rendered: dict[str, Docs], overlay: str
) -> None:
    docs = rendered[overlay]
    spec = pod_spec(docs)
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["APISERVER_AUDIT_POLICY_FILE"] == POLICY_FILE
    assert env["APISERVER_AUDIT_LOG_PATH"] == "-"
    config_map = named(docs, "ConfigMap", "task-search-audit-policy")
    assert config_map["metadata"]["namespace"] == NAMESPACE
    (volume,) = [v for v in spec["volumes"] if v.get("configMap")]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    directory, key = POLICY_FILE.rsplit("/", 1)
    assert mount["mountPath"] == directory
    assert key in config_map["data"]
    # the other components' volumes are untouched: tls and tmp always, the store on SQLite
    volumes = {v["name"] for v in spec["volumes"]}
    mounts = {m["name"] for m in container["volumeMounts"]}
    expected = {"tls", "tmp", volume["name"]} | ({"store"} if overlay == "sqlite" else set())
    assert volumes == mounts == expected


def test_the_audit_policy_is_an_audit_k8s_io_v1_policy(sqlite: Docs) -> None:
    config_map = named(sqlite, "ConfigMap", "task-search-audit-policy")
    policy = yaml.safe_load(config_map["data"]["policy.yaml"])
    assert (policy["apiVersion"], policy["kind"]) == ("audit.k8s.io/v1", "Policy")
    assert set(policy["omitStages"]) == {"RequestReceived"} <= AUDIT_STAGES
    rules = policy["rules"]
    assert rules
    assert {rule["level"] for rule in rules} <= AUDIT_LEVELS
    for rule in rules:
        # a rule is about resources or about non-resource URLs, never both
        assert not ("resources" in rule and "nonResourceURLs" in rule), rule
        assert set(rule.get("omitStages", [])) <= AUDIT_STAGES
    # the last rule catches everything, at Metadata
    assert rules[-1] == {"level": "Metadata"}
    quiet = [rule for rule in rules if rule["level"] == "None"]
    silenced = {url for rule in quiet for url in rule.get("nonResourceURLs", [])}
    assert {"/healthz*", "/livez*", "/readyz*", "/metrics"} <= silenced
    (writes,) = [rule for rule in rules if "resources" in rule]
    assert set(writes["verbs"]) == {"create", "update", "patch", "delete", "deletecollection"}
    (group,) = writes["resources"]
    assert group["group"] == "search.task.example.example.com"
    assert {"customtasks", "clustertasks"} <= set(group["resources"])


# the ServiceMonitor


def crd_validator(path: Path) -> Any:
    """A validator of a CRD's openAPIV3Schema kept in tests/schemas, itself checked first."""
    schema = json.loads(path.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def test_the_servicemonitor_validates_against_the_crd_schema(sqlite: Docs) -> None:
    validator = crd_validator(SCHEMA)
    monitor = service_monitor(sqlite)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(monitor)]
    assert errors == []
    # the schema does check: a scheme the CRD does not know is refused
    broken = json.loads(json.dumps(monitor))
    broken["spec"]["endpoints"][0]["scheme"] = "ftp"
    assert not validator.is_valid(broken)


def test_the_servicemonitor_scrapes_the_services_https_port_on_metrics(sqlite: Docs) -> None:
    monitor = service_monitor(sqlite)
    service = one(sqlite, "Service", SERVICE)
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"] == NAMESPACE
    # no namespaceSelector: Services in the ServiceMonitor's own namespace
    assert "namespaceSelector" not in monitor["spec"]
    selector = monitor["spec"]["selector"]
    assert set(selector) == {"matchLabels"}
    assert selector["matchLabels"].items() <= service["metadata"]["labels"].items()
    scraped = endpoint(sqlite)
    assert scraped["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert (scraped["path"], scraped["scheme"]) == ("/metrics", "https")
    assert "bearerTokenFile" not in scraped and "bearerTokenSecret" not in scraped


def test_the_servicemonitor_verifies_the_serving_certificate(sqlite: Docs) -> None:
    tls = endpoint(sqlite)["tlsConfig"]
    assert not tls.get("insecureSkipVerify", False)
    certificate = one(sqlite, "Certificate", SERVICE)["spec"]
    assert tls["serverName"] == f"{SERVICE}.{NAMESPACE}.svc"
    assert tls["serverName"] in certificate["dnsNames"]
    # cert-manager writes the issuing CA beside the certificate, as ca.crt
    assert tls["ca"] == {"secret": {"name": certificate["secretName"], "key": "ca.crt"}}
    volumes = {v["name"]: v for v in pod_spec(sqlite)["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == certificate["secretName"]


# the PodMonitor


def test_the_podmonitor_validates_against_the_crd_schema(sqlite: Docs) -> None:
    validator = crd_validator(POD_MONITOR_SCHEMA)
    monitor = pod_monitor(sqlite)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(monitor)]
    assert errors == []
    # the schema does check: a scheme the CRD does not know, or no selector, is refused
    broken = json.loads(json.dumps(monitor))
    broken["spec"]["podMetricsEndpoints"][0]["scheme"] = "ftp"
    assert not validator.is_valid(broken)
    unselected = json.loads(json.dumps(monitor))
    del unselected["spec"]["selector"]
    assert not validator.is_valid(unselected)


def test_the_podmonitor_scrapes_the_controllers_probe_port_on_metrics(sqlite: Docs) -> None:
    monitor = pod_monitor(sqlite)
    deployment = one(sqlite, "Deployment", CONTROLLER)
    template = deployment["spec"]["template"]
    assert monitor["metadata"]["namespace"] == deployment["metadata"]["namespace"] == NAMESPACE
    # no namespaceSelector: pods in the PodMonitor's own namespace
    assert "namespaceSelector" not in monitor["spec"]
    selector = monitor["spec"]["selector"]
    assert set(selector) == {"matchLabels"}
    labels = template["metadata"]["labels"]
    assert selector["matchLabels"].items() <= labels.items()
    # the controller's pods only: not the API server's, which its ServiceMonitor scrapes
    server = one(sqlite, "Deployment", DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]
    assert not selector["matchLabels"].items() <= server.items()
    # the job is named after a label the pods have
    assert monitor["spec"]["jobLabel"] in labels
    scraped = pod_endpoint(sqlite)
    (container,) = template["spec"]["containers"]
    assert scraped["port"] in {port["name"] for port in container["ports"]}
    # the port the kubelet's probes use: the one the controller serves /metrics on
    assert scraped["port"] == container["readinessProbe"]["httpGet"]["port"]
    assert (scraped["path"], scraped["scheme"]) == ("/metrics", "http")
    assert "authorization" not in scraped and "tlsConfig" not in scraped


# RBAC


def test_the_scrapes_token_is_of_the_service_account_granted_get_on_metrics(
    sqlite: Docs,
) -> None:
    credentials = endpoint(sqlite)["authorization"]["credentials"]
    secret = one(sqlite, "Secret", credentials["name"])
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["namespace"] == NAMESPACE
    assert credentials["key"] == "token"
    account = secret["metadata"]["annotations"]["kubernetes.io/service-account.name"]
    assert one(sqlite, "ServiceAccount", account)["metadata"]["namespace"] == NAMESPACE

    role = one(sqlite, "ClusterRole", "task-search-api:metrics")
    assert role["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    binding = one(sqlite, "ClusterRoleBinding", "task-search-api:metrics")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "task-search-api:metrics",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]


def test_kube_prometheus_may_discover_the_pods_behind_the_service(sqlite: Docs) -> None:
    role = one(sqlite, "Role", "task-search:prometheus-discovery")
    assert role["metadata"]["namespace"] == NAMESPACE
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    discovered = [
        ("", "services"),
        ("", "endpoints"),
        ("", "pods"),
        ("discovery.k8s.io", "endpointslices"),
    ]
    for group, resource in discovered:
        assert {(group, resource, "list"), (group, resource, "watch")} <= granted
    binding = one(sqlite, "RoleBinding", "task-search:prometheus-discovery")
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "prometheus-k8s", "namespace": "monitoring"}
    ]
