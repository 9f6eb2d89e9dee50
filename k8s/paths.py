"""Where the cluster objects this project reads and writes live: the tutorial's Task API
(``example.example.com/v1``), core Events and Namespaces, and the admission policies and
webhook configurations. One place for each path."""

from __future__ import annotations

TASK_GROUP = "example.example.com"
TASK_VERSION = "v1"
TASK_API = f"/apis/{TASK_GROUP}/{TASK_VERSION}"


def tasks(namespace: str | None = None, name: str = "") -> str:
    """The Tasks of ``namespace`` (None: of every namespace), or one of them by ``name``."""
    path = f"{TASK_API}/namespaces/{namespace}/tasks" if namespace else f"{TASK_API}/tasks"
    return f"{path}/{name}" if name else path


def events(namespace: str | None = None) -> str:
    """The core Events of ``namespace`` (None: of every namespace)."""
    return f"/api/v1/namespaces/{namespace}/events" if namespace else "/api/v1/events"


def namespaces(name: str = "") -> str:
    """The cluster's Namespaces, or one of them by ``name``."""
    return f"/api/v1/namespaces/{name}" if name else "/api/v1/namespaces"


def leases(namespace: str, name: str = "") -> str:
    """The coordination.k8s.io/v1 Leases of ``namespace``, or one of them by ``name``."""
    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{path}/{name}" if name else path


def group_version(api_version: str) -> str:
    """Where the resources of an ``apiVersion`` (``v1``, ``group/version``) are listed."""
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


ADMISSION_API = group_version("admissionregistration.k8s.io/v1")
VALIDATING_POLICIES = f"{ADMISSION_API}/validatingadmissionpolicies"
VALIDATING_POLICY_BINDINGS = f"{ADMISSION_API}/validatingadmissionpolicybindings"
MUTATING_WEBHOOKS = f"{ADMISSION_API}/mutatingwebhookconfigurations"
VALIDATING_WEBHOOKS = f"{ADMISSION_API}/validatingwebhookconfigurations"
