"""The manifests under k8s/manifests agree with the code that serves and reads them."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import yaml

from handlers.registry import find
from handlers.tasks import SPEC_SCHEMA, STATUS_SCHEMA
from k8s.paths import TASK_GROUP, TASK_VERSION
from tests.support.servers import ROOT

MANIFESTS = ROOT / "k8s" / "manifests"


def crd() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((MANIFESTS / "crd" / "task.yaml").read_text())
    return document


def test_task_crd_schema_is_the_one_the_server_validates_tasks_against() -> None:
    (version,) = crd()["spec"]["versions"]
    properties = version["schema"]["openAPIV3Schema"]["properties"]
    assert properties["spec"] == SPEC_SCHEMA
    assert properties["status"] == STATUS_SCHEMA
    assert version["subresources"] == {"status": {}}


def test_task_crd_names_and_selectable_fields_are_what_combinedtasks_use() -> None:
    document = crd()
    spec = document["spec"]
    assert document["metadata"]["name"] == "tasks.example.example.com"
    assert (spec["group"], spec["scope"]) == (TASK_GROUP, "Namespaced")
    assert spec["names"] == {
        "kind": "Task",
        "listKind": "TaskList",
        "plural": "tasks",
        "singular": "task",
    }
    combined = find("combinedtasks")
    assert combined is not None
    (version,) = spec["versions"]
    assert version["name"] == TASK_VERSION
    selectable = [field["jsonPath"].lstrip(".") for field in version["selectableFields"]]
    assert selectable == list(combined.kind.selectable_fields)


def test_the_crd_kustomization_renders() -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is part of this project's test environment"
    rendered = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS / "crd")],
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
    ).stdout
    assert list(yaml.safe_load_all(rendered)) == [crd()]
