"""R10 server-side apply with every kubectl: field ownership (managedFields), re-applies that
remove what is no longer applied, conflicts printed as kube prints them, ``--force-conflicts``,
``diff --server-side``, the migration from client-side apply and the status subresource's
own manager."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.kubectl.test_kubectl import (
    CUSTOM,
    GROUP,
    KINDS,
    Kind,
    KindKubectl,
    _editor,
    _run_env,
    _scope,
    task,
)
from tests.support.kubectl import BINARIES, describe

if not BINARIES:
    pytest.skip("no kubectl binary on PATH", allow_module_level=True)

pytestmark = pytest.mark.kubectl

GV = f"{GROUP}/v1"
# kubectl's own advice after a conflict, under kube's message (kubectl pkg/cmd/apply)
ADVICE = "Please review the fields above--they currently have other managers."


def managers(
    kubectl: KindKubectl, kind: Kind, name: str, namespace: str
) -> dict[tuple[str, str], Any]:
    """The object's managedFields as ``get --show-managed-fields -o yaml`` prints them, by
    manager and operation."""
    out = kubectl.ok(
        "get", kind.plural, name, "--show-managed-fields", "-o", "yaml", *_scope(kind, namespace)
    )
    entries = yaml.safe_load(out)["metadata"]["managedFields"]
    return {(e["manager"], e["operation"]): e for e in entries}


def live(kubectl: KindKubectl, kind: Kind, name: str, namespace: str) -> dict[str, Any]:
    response = kubectl.stored(kind, name, namespace)
    assert response.status_code == 200, response.text
    obj: dict[str, Any] = response.json()
    return obj


@KINDS
def test_reapply_removes_what_is_no_longer_applied(kubectl: KindKubectl, kind: Kind) -> None:
    """The issue's first commands: a label and a spec field left out of the second apply
    are removed, as kube removes fields only their applier owned."""
    name, namespace = f"reapply-{kubectl.tag}", f"ns-ssa-{kubectl.tag}"
    scope = _scope(kind, namespace)
    s1 = task(kind, name, labels={"team": "a", "tier": "x"}, details="first")
    s2 = task(kind, name, labels={"team": "a"})
    for doc in (s1, s2):
        path = kubectl.write(f"{name}.yaml", doc)
        out = kubectl.ok("apply", "--server-side", "--field-manager=flux", "-f", path, *scope)
        assert out == f"{kind.qualified}/{name} serverside-applied\n"
    obj = live(kubectl, kind, name, namespace)
    assert obj["metadata"]["labels"] == {"team": "a"}
    assert "details" not in obj["spec"]
    plain = yaml.safe_load(kubectl.ok("get", kind.plural, name, "-o", "yaml", *scope))
    assert "managedFields" not in plain["metadata"]  # hidden unless asked for
    flux = managers(kubectl, kind, name, namespace)[("flux", "Apply")]
    assert flux["apiVersion"] == GV and flux["fieldsType"] == "FieldsV1"
    assert flux["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:team": {}}},
        "f:spec": {"f:deadline": {}, "f:priority": {}},
    }


def test_conflict_is_printed_as_kube_and_force_takes_ownership(kubectl: KindKubectl) -> None:
    name, namespace = f"conflict-{kubectl.tag}", f"ns-ssa-{kubectl.tag}"
    p4 = kubectl.write(f"{name}-4.yaml", task(CUSTOM, name, priority=4))
    p3 = kubectl.write(f"{name}-3.yaml", task(CUSTOM, name, priority=3))
    kubectl.ok("apply", "--server-side", "--field-manager=other", "-f", p4, "-n", namespace)
    refused = kubectl.fails(
        "apply", "--server-side", "--field-manager=mine", "-f", p3, "-n", namespace
    )
    assert 'Apply failed with 1 conflict: conflict with "other": .spec.priority\n' in refused
    assert ADVICE in refused
    assert live(kubectl, CUSTOM, name, namespace)["spec"]["priority"] == 4
    out = kubectl.ok(
        "apply",
        "--server-side",
        "--field-manager=mine",
        "--force-conflicts",
        "-f",
        p3,
        "-n",
        namespace,
    )
    assert out == f"{CUSTOM.qualified}/{name} serverside-applied\n"
    assert live(kubectl, CUSTOM, name, namespace)["spec"]["priority"] == 3
    owners = managers(kubectl, CUSTOM, name, namespace)
    assert "f:priority" in owners[("mine", "Apply")]["fieldsV1"]["f:spec"]
    assert "f:priority" not in owners[("other", "Apply")]["fieldsV1"]["f:spec"]
    assert "f:deadline" in owners[("other", "Apply")]["fieldsV1"]["f:spec"]  # co-owned


def test_diff_server_side_shows_nothing_right_after_an_apply(kubectl: KindKubectl) -> None:
    name, namespace = f"diff-{kubectl.tag}", f"ns-ssa-{kubectl.tag}"
    path = kubectl.write(f"{name}.yaml", task(CUSTOM, name, priority=5, details="same"))
    kubectl.ok("apply", "--server-side", "-f", path, "-n", namespace)
    same = kubectl.run("diff", "--server-side", "-f", path, "-n", namespace)
    assert (same.returncode, same.stdout) == (0, ""), describe(same)
    changed = kubectl.write(f"{name}-2.yaml", task(CUSTOM, name, priority=6, details="same"))
    differs = kubectl.run("diff", "--server-side", "-f", changed, "-n", namespace)
    assert differs.returncode == 1, describe(differs)
    assert "-  priority: 5\n" in differs.stdout and "+  priority: 6\n" in differs.stdout


def test_client_side_then_server_side_apply_migrates_ownership(kubectl: KindKubectl) -> None:
    """kubectl moves its client-side apply's fields to its server-side manager, so a field
    the file no longer has is removed, as on kube; the last-applied annotation is kept by
    its own applier and follows the applied configuration."""
    name, namespace = f"migrate-{kubectl.tag}", f"ns-ssa-{kubectl.tag}"
    first = kubectl.write(f"{name}.yaml", task(CUSTOM, name, priority=2, details="csa"))
    kubectl.ok("apply", "-f", first, "-n", namespace)
    before = managers(kubectl, CUSTOM, name, namespace)
    assert list(before) == [("kubectl-client-side-apply", "Update")]
    second = kubectl.write(f"{name}-2.yaml", task(CUSTOM, name, priority=7))
    out = kubectl.ok("apply", "--server-side", "-f", second, "-n", namespace)
    assert out == f"{CUSTOM.qualified}/{name} serverside-applied\n"
    obj = live(kubectl, CUSTOM, name, namespace)
    assert obj["spec"]["priority"] == 7
    assert "details" not in obj["spec"]
    after = managers(kubectl, CUSTOM, name, namespace)
    assert ("kubectl-client-side-apply", "Update") not in after
    assert ("kubectl", "Apply") in after


def test_edit_then_apply_conflicts_with_the_editor(kubectl: KindKubectl) -> None:
    name, namespace = f"edit-ssa-{kubectl.tag}", f"ns-ssa-{kubectl.tag}"
    path = kubectl.write(f"{name}.yaml", task(CUSTOM, name, priority=3))
    kubectl.ok("apply", "--server-side", "-f", path, "-n", namespace)
    script = "sed -i -e 's/^\\( *priority:\\) 3$/\\1 6/' \"$1\""
    edited = _run_env(
        kubectl, _editor(kubectl, script), "edit", CUSTOM.plural, name, "-n", namespace
    )
    assert edited.returncode == 0, describe(edited)
    again = kubectl.write(f"{name}-2.yaml", task(CUSTOM, name, priority=4))
    refused = kubectl.fails("apply", "--server-side", "-f", again, "-n", namespace)
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using '
        f"{GV}: .spec.priority\n" in refused
    )
    editor = managers(kubectl, CUSTOM, name, namespace)[("kubectl-edit", "Update")]
    assert editor["fieldsV1"] == {"f:spec": {"f:priority": {}}}


def test_the_status_subresource_has_its_own_manager(kubectl: KindKubectl) -> None:
    name, namespace = f"status-ssa-{kubectl.tag}", f"ns-ssa-{kubectl.tag}"
    path = kubectl.write(f"{name}.yaml", task(CUSTOM, name, priority=3))
    kubectl.ok("apply", "--server-side", "-f", path, "-n", namespace)
    kubectl.ok(
        "patch",
        CUSTOM.plural,
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"Running"}}',
    )
    status = managers(kubectl, CUSTOM, name, namespace)[("kubectl-patch", "Update")]
    assert status["subresource"] == "status"
    assert status["fieldsV1"] == {"f:status": {".": {}, "f:phase": {}}}
