"""Every ``kubectl.1.NN`` next to the ``kubectl`` on PATH against the real server.

The ``kubectl`` on PATH may be a dispatcher that picks a binary by the server's version, so
the versioned binaries are called directly, each test with its own ``--cache-dir``. The
server is shared by all tests of a process: every test names its objects and namespaces
after the kubectl version (``ns-1-29``) and after itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import pytest
import requests
import yaml

from tests.support.kubectl import BINARIES, TIMEOUT, Kubectl, describe, table

GROUP = "search.task.example.example.com"
GV = f"/apis/{GROUP}/v1"
DEADLINE = "2030-01-01T00:00:00Z"


if not BINARIES:
    pytest.skip("no kubectl binary on PATH", allow_module_level=True)

pytestmark = pytest.mark.kubectl


@dataclass(frozen=True)
class Kind:
    plural: str
    kind: str
    short: str
    namespaced: bool

    @property
    def qualified(self) -> str:
        """How kubectl names one object of this kind: ``customtask.<group>``."""
        return f"{self.kind.lower()}.{GROUP}"

    def path(self, name: str = "", namespace: str = "") -> str:
        scope = f"/namespaces/{namespace}" if self.namespaced else ""
        return f"{GV}{scope}/{self.plural}" + (f"/{name}" if name else "")


CLUSTER = Kind("clustertasks", "ClusterTask", "cltask", namespaced=False)
CUSTOM = Kind("customtasks", "CustomTask", "cutask", namespaced=True)
KINDS = pytest.mark.parametrize("kind", [CLUSTER, CUSTOM], ids=lambda k: k.plural)


def task(
    kind: Kind,
    name: str | None,
    *,
    priority: int = 3,
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A manifest; ``name=None`` leaves ``metadata.name`` out (the tutorial's raw files)."""
    metadata: dict[str, Any] = {"name": name} if name else {}
    if labels:
        metadata["labels"] = labels
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": kind.kind,
        "metadata": metadata,
        "spec": {"priority": priority, "deadline": DEADLINE, **spec},
    }


@dataclass(frozen=True)
class KindKubectl(Kubectl):
    """kubectl with helpers for this server's own kinds."""

    def stored(self, kind: Kind, name: str, namespace: str = "") -> requests.Response:
        """The object read back directly with the admin certificate."""
        return self.server.session().get(self.server.url + kind.path(name, namespace), timeout=10)

    def create(self, kind: Kind, namespace: str, *docs: dict[str, Any]) -> None:
        """``create -f`` of a YAML file holding ``docs``."""
        names = [doc["metadata"]["name"] for doc in docs]
        out = self.ok(
            "create", "-f", self.write(f"{names[0]}.yaml", *docs), *_scope(kind, namespace)
        )
        assert out.splitlines() == [f"{kind.qualified}/{n} created" for n in names]


def _scope(kind: Kind, namespace: str) -> list[str]:
    return ["-n", namespace] if kind.namespaced else []


# discovery and OpenAPI


def test_api_resources_lists_every_kind_d1_d2(kubectl: KindKubectl) -> None:
    """D1/D2: names, short names, group version, scope and kind of every resource."""
    header, rows = table(kubectl.ok("api-resources", f"--api-group={GROUP}"))
    assert header == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert sorted(rows) == [
        ["clustertasks", "cltask", f"{GROUP}/v1", "false", "ClusterTask"],
        ["combinedtasks", f"{GROUP}/v1", "true", "CombinedTask"],  # no short name
        ["customtasks", "cutask", f"{GROUP}/v1", "true", "CustomTask"],
    ]


def test_explain_prints_field_descriptions_o4(kubectl: KindKubectl) -> None:
    """O4: explain reads the kinds' schemas (descriptions, required fields)."""
    spec = kubectl.ok("explain", "customtasks.spec")
    assert "KIND:       CustomTask" in spec
    assert re.search(r"deadline\s+<string> -required-", spec)
    assert re.search(r"priority\s+<integer> -required-", spec)
    assert "Priority of the task, from 0 (lowest) to 10 (highest)." in spec
    assert "When the task is due, as an RFC 3339 date-time." in spec
    whole = kubectl.ok("explain", "clustertasks")
    assert "KIND:       ClusterTask" in whole
    assert "ClusterTask is a cluster-scoped task stored by this API server." in whole
    assert re.search(r"spec\s+<Object> -required-", whole)
    assert "Priority of the task" in kubectl.ok("explain", "cltask.spec.priority")


# create


@KINDS
@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_create_from_file_r8(kubectl: KindKubectl, kind: Kind, fmt: str) -> None:
    """R8: ``create -f`` (JSON or YAML) stores the object; kubectl prints ``... created``."""
    name, namespace = f"create-{fmt}-{kubectl.tag}", f"ns-{kubectl.tag}"
    manifest = task(kind, name, priority=4, labels={"fmt": fmt}, details="from a file")
    path = kubectl.write(f"{name}.{fmt}", manifest)
    out = kubectl.ok("create", "-f", path, *_scope(kind, namespace))
    assert out == f"{kind.qualified}/{name} created\n"
    response = kubectl.stored(kind, name, namespace)
    assert response.status_code == 200, response.text
    obj = response.json()
    assert obj["kind"] == kind.kind
    assert obj["metadata"]["labels"] == {"fmt": fmt}
    assert obj["metadata"].get("namespace") == (namespace if kind.namespaced else None)
    assert obj["spec"] == {**manifest["spec"], "taskState": "Pending"}


@KINDS
def test_create_dry_run_server_persists_nothing_r8(kubectl: KindKubectl, kind: Kind) -> None:
    """R8: ``--dry-run=server`` validates and answers, and stores nothing."""
    name, namespace = f"dry-{kubectl.tag}", f"ns-{kubectl.tag}"
    path = kubectl.write(f"{name}.yaml", task(kind, name))
    out = kubectl.ok("create", "-f", path, "--dry-run=server", *_scope(kind, namespace))
    assert out == f"{kind.qualified}/{name} created (server dry run)\n"
    assert kubectl.stored(kind, name, namespace).status_code == 404


@KINDS
@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry-run"])
def test_create_duplicate_is_already_exists_r3_r8(
    kubectl: KindKubectl, kind: Kind, dry_run: bool
) -> None:
    """R3/R8: a second create of a name is 409 AlreadyExists, also with ``dryRun=All``
    (kube-apiserver's dry-run storage checks that the key is free)."""
    name, namespace = f"dup-{'dry' if dry_run else 'real'}-{kubectl.tag}", f"ns-{kubectl.tag}"
    kubectl.create(kind, namespace, task(kind, name, priority=1))
    path = kubectl.write(f"{name}-again.yaml", task(kind, name, priority=2))
    extra = ["--dry-run=server"] if dry_run else []
    out = kubectl.fails("create", "-f", path, *extra, *_scope(kind, namespace))
    assert "Error from server (AlreadyExists)" in out
    assert f'{kind.plural}.{GROUP} "{name}" already exists' in out
    assert kubectl.stored(kind, name, namespace).json()["spec"]["priority"] == 1


@KINDS
def test_invalid_object_is_rejected_with_field_errors_r3(kubectl: KindKubectl, kind: Kind) -> None:
    """R3: 422 Invalid; kubectl renders the causes; nothing is stored."""
    name, namespace = f"invalid-{kubectl.tag}", f"ns-{kubectl.tag}"
    manifest = task(kind, name, priority=11)
    del manifest["spec"]["deadline"]
    path = kubectl.write(f"{name}.yaml", manifest)
    out = kubectl.fails("create", "-f", path, *_scope(kind, namespace))
    assert f'The {kind.kind} "{name}" is invalid' in out
    assert "spec.priority: Invalid value: 11" in out
    assert "spec.deadline: Required value" in out
    assert kubectl.stored(kind, name, namespace).status_code == 404


# the tutorial's raw requests


@KINDS
def test_raw_create_and_replace_r2_r8_r9(kubectl: KindKubectl, kind: Kind) -> None:
    """R2/R8/R9: ``create --raw`` names the object by its path (body without a name, no
    Content-Type, chunked); ``replace --raw`` needs the current resourceVersion."""
    name, namespace = f"raw-{kubectl.tag}", f"ns-raw-{kubectl.tag}"
    path = kind.path(name, namespace)
    created = json.loads(
        kubectl.ok("create", "--raw", path, "-f", kubectl.write("raw.yaml", task(kind, None)))
    )
    assert created["metadata"]["name"] == name
    assert created["metadata"].get("namespace") == (namespace if kind.namespaced else None)
    before = kubectl.stored(kind, name, namespace).json()
    changed = task(kind, name, priority=7, taskState="Finished", details="replaced raw")
    changed["metadata"]["resourceVersion"] = before["metadata"]["resourceVersion"]
    body = kubectl.write("raw-replace.yaml", changed)
    replaced = json.loads(kubectl.ok("replace", "--raw", path, "-f", body))
    after = kubectl.stored(kind, name, namespace).json()
    assert after == replaced
    assert after["spec"] == changed["spec"]
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["generation"] == 2
    assert after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]
    stale = kubectl.fails("replace", "--raw", path, "-f", body)
    assert "Error from server (Conflict)" in stale
    assert "the object has been modified" in stale


# get


def _labelled(kubectl: KindKubectl, test: str) -> tuple[str, dict[str, str]]:
    """Four CustomTasks labelled a=x, a=y, a=z, a=x+b=1 in a namespace of ``test``'s own.

    Returns the namespace and, by short name (``ax`` ...), kubectl's name of each object."""
    namespace = f"{test}-{kubectl.tag}"
    objects = {"ax": {"a": "x"}, "ay": {"a": "y"}, "az": {"a": "z"}, "axb": {"a": "x", "b": "1"}}
    names = {short: f"{test}-{short}-{kubectl.tag}" for short in objects}
    kubectl.create(CUSTOM, namespace, *(task(CUSTOM, names[s], labels=objects[s]) for s in names))
    return namespace, names


@KINDS
def test_get_prints_table_columns_r7(kubectl: KindKubectl, kind: Kind) -> None:
    """R7: the server's Table columns; ``-o wide`` adds the priority-1 column."""
    name, namespace = f"table-{kubectl.tag}", f"ns-table-{kubectl.tag}"
    kubectl.create(kind, namespace, task(kind, name, priority=9, details="wide only"))
    header, rows = table(kubectl.ok("get", kind.short, name, *_scope(kind, namespace)))
    assert header == ["NAME", "PRIORITY", "DEADLINE", "STATE", "AGE"]
    assert [row[:4] for row in rows] == [[name, "9", DEADLINE, "Pending"]]
    assert re.fullmatch(r"\d+s|\d+m\d*s?", rows[0][4]), rows
    wide = kubectl.ok("get", kind.plural, name, "-o", "wide", *_scope(kind, namespace))
    header, rows = table(wide)
    assert header == ["NAME", "PRIORITY", "DEADLINE", "STATE", "AGE", "DETAILS"]
    assert rows[0][5] == "wide only"


@KINDS
def test_get_output_yaml_r4(kubectl: KindKubectl, kind: Kind) -> None:
    """R4: ``-o yaml`` prints the whole stored object but its managedFields, which kubectl
    hides unless ``--show-managed-fields``."""
    name, namespace = f"yaml-{kubectl.tag}", f"ns-{kubectl.tag}"
    kubectl.create(kind, namespace, task(kind, name, priority=5, labels={"k": "v"}))
    obj = yaml.safe_load(
        kubectl.ok("get", kind.plural, name, "-o", "yaml", *_scope(kind, namespace))
    )
    stored = kubectl.stored(kind, name, namespace).json()
    assert [e["manager"] for e in stored["metadata"].pop("managedFields")] == ["kubectl-create"]
    assert obj == stored
    assert (obj["apiVersion"], obj["kind"]) == (f"{GROUP}/v1", kind.kind)
    assert obj["metadata"]["labels"] == {"k": "v"}
    assert obj["spec"]["priority"] == 5


def test_get_all_namespaces_shows_namespace_column_r1_r7(kubectl: KindKubectl) -> None:
    """R1/R7: ``get -A`` lists across namespaces; NAMESPACE comes from the rows' objects."""
    name = f"every-{kubectl.tag}"
    namespaces = [f"ns-a-{kubectl.tag}", f"ns-b-{kubectl.tag}"]
    for namespace in namespaces:
        kubectl.create(CUSTOM, namespace, task(CUSTOM, name))
    header, rows = table(kubectl.ok("get", "customtasks", "-A"))
    assert header == ["NAMESPACE", "NAME", "PRIORITY", "DEADLINE", "STATE", "AGE"]
    assert sorted(row[0] for row in rows if row[1] == name) == namespaces


def test_get_label_selector_r5(kubectl: KindKubectl) -> None:
    """R1/R5: set-based and existence requirements, with commas inside parentheses."""
    namespace, names = _labelled(kubectl, "labels")
    out = kubectl.ok("get", "customtasks", "-n", namespace, "-l", "a in (x,y),!b", "-o", "name")
    assert sorted(out.split()) == sorted(f"{CUSTOM.qualified}/{names[n]}" for n in ("ax", "ay"))
    _, rows = table(kubectl.ok("get", "cutask", "-n", namespace, "-l", "a notin (x),b!=1"))
    assert sorted(row[0] for row in rows) == sorted([names["ay"], names["az"]])


def test_get_field_selector_r5(kubectl: KindKubectl) -> None:
    """R5: ``metadata.name`` (as ``get NAME -w`` and ``wait`` use it) selects one object."""
    namespace, names = _labelled(kubectl, "fields")
    selector = f"--field-selector=metadata.name={names['az']}"
    out = kubectl.ok("get", "customtasks", "-n", namespace, selector, "-o", "name")
    assert out.split() == [f"{CUSTOM.qualified}/{names['az']}"]
    _, rows = table(kubectl.ok("get", "customtasks", "-A", selector))
    assert [row[:2] for row in rows] == [[namespace, names["az"]]]


def test_get_chunk_size_follows_continue_r5(kubectl: KindKubectl) -> None:
    """R5: ``--chunk-size=1`` pages with limit/continue and still gets every object."""
    namespace, names = _labelled(kubectl, "chunks")
    paged = kubectl.run(
        "get", "customtasks", "-n", namespace, "--chunk-size=1", "-o", "name", "-v=6"
    )
    assert paged.returncode == 0, describe(paged)
    assert sorted(paged.stdout.split()) == sorted(f"{CUSTOM.qualified}/{n}" for n in names.values())
    requests_made = [line for line in paged.stderr.splitlines() if "/customtasks?" in line]
    assert sum("continue=" in line for line in requests_made) >= len(names) - 1, paged.stderr
    header, rows = table(kubectl.ok("get", "customtasks", "-n", namespace, "--chunk-size=1"))
    assert header[0] == "NAME"
    assert sorted(row[0] for row in rows) == sorted(names.values())


# replace and delete


@KINDS
def test_replace_from_file_r9(kubectl: KindKubectl, kind: Kind) -> None:
    """R9: ``replace -f`` without a resourceVersion (kubectl fetches it) stores the change."""
    name, namespace = f"replace-{kubectl.tag}", f"ns-{kubectl.tag}"
    kubectl.create(kind, namespace, task(kind, name, priority=2))
    before = kubectl.stored(kind, name, namespace).json()
    path = kubectl.write(f"{name}.json", task(kind, name, priority=8, taskState="Finished"))
    out = kubectl.ok("replace", "-f", path, *_scope(kind, namespace))
    assert out == f"{kind.qualified}/{name} replaced\n"
    after = kubectl.stored(kind, name, namespace).json()
    assert after["spec"] == {"priority": 8, "deadline": DEADLINE, "taskState": "Finished"}
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["generation"] == 2


@KINDS
def test_delete_waits_until_gone_r11(kubectl: KindKubectl, kind: Kind) -> None:
    """R11: ``delete`` answers, kubectl waits for the 404; a second delete is NotFound."""
    name, namespace = f"delete-{kubectl.tag}", f"ns-{kubectl.tag}"
    kubectl.create(kind, namespace, task(kind, name))
    out = kubectl.ok("delete", kind.short, name, *_scope(kind, namespace))
    assert out == f'{kind.qualified} "{name}" deleted\n'
    assert kubectl.stored(kind, name, namespace).status_code == 404
    again = kubectl.fails("delete", kind.plural, name, *_scope(kind, namespace))
    assert f'Error from server (NotFound): {kind.plural}.{GROUP} "{name}" not found' in again


@pytest.mark.parametrize(
    ("cascade", "finalizer"), [("foreground", "foregroundDeletion"), ("orphan", "orphan")]
)
def test_delete_cascade_leaves_the_garbage_collectors_finalizer_r11(
    kubectl: KindKubectl, cascade: str, finalizer: str
) -> None:
    """R11: ``delete --cascade=foreground|orphan`` marks the object for the garbage collector
    (deletionTimestamp and its finalizer) instead of removing it; removing that finalizer, as
    the collector does once done, completes the deletion."""
    name, namespace = f"cascade-{cascade}-{kubectl.tag}", f"ns-{kubectl.tag}"
    kubectl.create(CUSTOM, namespace, task(CUSTOM, name))
    out = kubectl.ok(
        "delete", CUSTOM.short, name, f"--cascade={cascade}", "--wait=false", "-n", namespace
    )
    assert out == f'{CUSTOM.qualified} "{name}" deleted\n'
    marked = _metadata(kubectl, CUSTOM, name, namespace)
    assert marked["finalizers"] == [finalizer]
    assert marked["deletionTimestamp"]
    _admin_patch(kubectl, CUSTOM, name, namespace, {"metadata": {"finalizers": None}})
    assert kubectl.stored(CUSTOM, name, namespace).status_code == 404


# watch


def test_get_watch_prints_each_change_r6(kubectl: KindKubectl) -> None:
    """R6: ``get -w`` lists, then watches from the list's resourceVersion; ``get NAME -w``
    watches one object by field selector (its first, synthetic event is swallowed)."""
    namespace = f"watch-{kubectl.tag}"
    kubectl.create(CUSTOM, namespace, task(CUSTOM, "w-a"))
    command = [str(kubectl.binary), "--kubeconfig", kubectl.kubeconfig]
    command += ["--cache-dir", str(kubectl.workdir / "cache-w"), "get", "customtasks", "-n"]
    watchers = [
        subprocess.Popen(
            [*command, namespace, *extra, "-w", "--request-timeout=0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for extra in ([], ["w-a", "-o", "name"])
    ]
    try:
        time.sleep(2)
        kubectl.create(CUSTOM, namespace, task(CUSTOM, "w-b"))
        kubectl.ok(
            "patch",
            "customtask",
            "w-a",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"spec":{"priority":7}}',
        )
        kubectl.ok("delete", "customtask", "w-a", "-n", namespace)
        time.sleep(2)
    finally:
        outputs = []
        for watcher in watchers:
            watcher.terminate()
            outputs.append(watcher.communicate(timeout=10)[0])
    table, named = outputs
    names = [line.split()[0] for line in table.splitlines()[1:] if line.strip()]
    assert names == ["w-a", "w-b", "w-a", "w-a"], table
    assert [line.split()[1] for line in table.splitlines()[1:4]] == ["3", "3", "7"], table
    assert named.splitlines().count(f"{CUSTOM.qualified}/w-a") >= 2, named


# helpers for the commands below: background runs, environments, direct writes


class _Background:
    """A kubectl run in the background (``wait``), its output collected by reader threads.

    It runs with ``-v=6`` so that the test can see in stderr when its watch is open."""

    def __init__(self, kubectl: KindKubectl, *args: str) -> None:
        command = [str(kubectl.binary), "--kubeconfig", kubectl.kubeconfig, "-v=6"]
        command += ["--cache-dir", str(kubectl.workdir / "cache-bg"), *args]
        self.command = command
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=_collect, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        for reader in self._readers:
            reader.start()

    def __enter__(self) -> _Background:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=10)

    def describe(self) -> str:
        return (
            f"{self.command}\nexit {self.process.returncode}\n"
            f"{''.join(self.stdout)}\n{''.join(self.stderr)}"
        )

    def await_watch(self, seconds: float = 20) -> None:
        """Until kubectl has its watch open (the response to ``watch=true`` is logged)."""
        deadline = time.monotonic() + seconds
        while not any("watch=true" in line for line in self.stderr):
            assert self.process.poll() is None, f"exited before watching\n{self.describe()}"
            assert time.monotonic() < deadline, f"no watch after {seconds}s\n{self.describe()}"
            time.sleep(0.05)

    def finish(self, seconds: float = 40) -> int:
        """Its exit code, once it has exited (killed and failed after ``seconds``)."""
        try:
            code = self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"still running after {seconds}s\n{self.describe()}") from None
        for reader in self._readers:
            reader.join(timeout=10)
        return code


def _collect(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def _run_env(
    kubectl: KindKubectl, env: Mapping[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``kubectl.run`` with variables added to the environment (``EDITOR`` for ``edit``)."""
    command = [str(kubectl.binary), "--kubeconfig", kubectl.kubeconfig]
    command += ["--cache-dir", str(kubectl.workdir / "cache"), *args]
    environ = {k: v for k, v in os.environ.items() if k != "KUBE_EDITOR"}
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env={**environ, **env},
    )


def _admin_patch(kubectl: KindKubectl, kind: Kind, name: str, namespace: str, patch: Any) -> None:
    """A JSON merge patch with the admin certificate."""
    response = kubectl.server.session().patch(
        kubectl.server.url + kind.path(name, namespace),
        data=json.dumps(patch),
        headers={"Content-Type": "application/merge-patch+json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def _spec(kubectl: KindKubectl, kind: Kind, name: str, namespace: str) -> dict[str, Any]:
    response = kubectl.stored(kind, name, namespace)
    assert response.status_code == 200, response.text
    spec: dict[str, Any] = response.json()["spec"]
    return spec


def _metadata(kubectl: KindKubectl, kind: Kind, name: str, namespace: str) -> dict[str, Any]:
    response = kubectl.stored(kind, name, namespace)
    assert response.status_code == 200, response.text
    metadata: dict[str, Any] = response.json()["metadata"]
    return metadata


# wait


@KINDS
def test_wait_for_delete_returns_when_deleted_r6_r11(kubectl: KindKubectl, kind: Kind) -> None:
    """R6/R11: ``wait --for=delete`` watches by field selector and exits 0 on the DELETED
    event of a delete made while it waits."""
    name, namespace = f"wait-del-{kubectl.tag}", f"ns-wait-{kubectl.tag}"
    kubectl.create(kind, namespace, task(kind, name))
    args = ["wait", "--for=delete", kind.plural, name, "--timeout=30s", *_scope(kind, namespace)]
    with _Background(kubectl, *args) as waiter:
        waiter.await_watch()
        assert waiter.process.poll() is None, waiter.describe()
        response = kubectl.server.session().delete(
            kubectl.server.url + kind.path(name, namespace), timeout=10
        )
        assert response.status_code == 200, response.text
        assert waiter.finish() == 0, waiter.describe()
    assert "".join(waiter.stdout) == f"{kind.qualified}/{name} condition met\n"
    assert kubectl.stored(kind, name, namespace).status_code == 404


def test_wait_for_delete_follows_finalizer_removal_r11(kubectl: KindKubectl) -> None:
    """R11: a delete of an object with a finalizer only marks it; ``wait --for=delete``
    keeps waiting and exits 0 once the last finalizer is removed."""
    name, namespace = f"wait-fin-{kubectl.tag}", f"ns-wait-{kubectl.tag}"
    manifest = task(CUSTOM, name)
    manifest["metadata"]["finalizers"] = ["example.com/hold"]
    kubectl.create(CUSTOM, namespace, manifest)
    out = kubectl.ok("delete", "customtask", name, "-n", namespace, "--wait=false")
    assert out == f'{CUSTOM.qualified} "{name}" deleted\n'
    assert "deletionTimestamp" in _metadata(kubectl, CUSTOM, name, namespace)
    args = ["wait", "--for=delete", f"customtask/{name}", "-n", namespace, "--timeout=30s"]
    with _Background(kubectl, *args) as waiter:
        waiter.await_watch()
        assert waiter.process.poll() is None, waiter.describe()
        _admin_patch(kubectl, CUSTOM, name, namespace, {"metadata": {"finalizers": None}})
        assert waiter.finish() == 0, waiter.describe()
    assert "".join(waiter.stdout) == f"{CUSTOM.qualified}/{name} condition met\n"
    assert kubectl.stored(CUSTOM, name, namespace).status_code == 404


@KINDS
def test_wait_for_jsonpath_returns_on_change_r6(kubectl: KindKubectl, kind: Kind) -> None:
    """R6: ``wait --for=jsonpath='{.spec.taskState}'=Finished`` keeps waiting while the task
    is Pending and exits 0 once a patch makes it Finished."""
    name, namespace = f"wait-jp-{kubectl.tag}", f"ns-wait-{kubectl.tag}"
    kubectl.create(kind, namespace, task(kind, name))
    condition = "--for=jsonpath={.spec.taskState}=Finished"
    args = ["wait", condition, kind.plural, name, "--timeout=30s", *_scope(kind, namespace)]
    with _Background(kubectl, *args) as waiter:
        waiter.await_watch()
        assert waiter.process.poll() is None, waiter.describe()
        _admin_patch(kubectl, kind, name, namespace, {"spec": {"priority": 4}})
        time.sleep(0.5)  # a change that does not meet the condition
        assert waiter.process.poll() is None, waiter.describe()
        _admin_patch(kubectl, kind, name, namespace, {"spec": {"taskState": "Finished"}})
        assert waiter.finish() == 0, waiter.describe()
    assert "".join(waiter.stdout) == f"{kind.qualified}/{name} condition met\n"


# apply


@KINDS
def test_apply_client_side_creates_configures_r8_r10(kubectl: KindKubectl, kind: Kind) -> None:
    """R8/R10: ``apply -f`` creates (with the last-applied annotation), then sends a merge
    patch of the change (a field left out of the file is removed), then changes nothing."""
    name, namespace = f"apply-{kubectl.tag}", f"ns-apply-{kubectl.tag}"
    scope = _scope(kind, namespace)
    first = kubectl.write(f"{name}.yaml", task(kind, name, priority=2, details="first"))
    assert kubectl.ok("apply", "-f", first, *scope) == f"{kind.qualified}/{name} created\n"
    created = _metadata(kubectl, kind, name, namespace)
    assert "kubectl.kubernetes.io/last-applied-configuration" in created["annotations"]
    second = kubectl.write(f"{name}-2.yaml", task(kind, name, priority=6, labels={"v": "2"}))
    assert kubectl.ok("apply", "-f", second, *scope) == f"{kind.qualified}/{name} configured\n"
    after = kubectl.stored(kind, name, namespace).json()
    assert after["spec"] == {"priority": 6, "deadline": DEADLINE, "taskState": "Pending"}
    assert after["metadata"]["labels"] == {"v": "2"}
    assert after["metadata"]["uid"] == created["uid"]
    assert after["metadata"]["generation"] == 2
    assert kubectl.ok("apply", "-f", second, *scope) == f"{kind.qualified}/{name} unchanged\n"
    again = kubectl.stored(kind, name, namespace).json()
    assert again["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]


@KINDS
def test_apply_server_side_creates_and_updates_r10(kubectl: KindKubectl, kind: Kind) -> None:
    """R10: ``apply --server-side`` creates the object, stores a change, and a server dry
    run stores nothing."""
    name, namespace = f"ssa-{kubectl.tag}", f"ns-apply-{kubectl.tag}"
    scope = _scope(kind, namespace)
    applied = f"{kind.qualified}/{name} serverside-applied\n"
    first = kubectl.write(f"{name}.yaml", task(kind, name, priority=2, details="first"))
    assert kubectl.ok("apply", "--server-side", "-f", first, *scope) == applied
    created = kubectl.stored(kind, name, namespace).json()
    assert created["spec"] == {
        "priority": 2,
        "deadline": DEADLINE,
        "details": "first",
        "taskState": "Pending",
    }
    second = kubectl.write(f"{name}-2.yaml", task(kind, name, priority=8, details="second"))
    assert kubectl.ok("apply", "--server-side", "-f", second, *scope) == applied
    after = kubectl.stored(kind, name, namespace).json()
    assert after["spec"]["priority"] == 8
    assert after["spec"]["details"] == "second"
    assert after["metadata"]["uid"] == created["metadata"]["uid"]
    third = kubectl.write(f"{name}-3.yaml", task(kind, name, priority=9, details="second"))
    dry = kubectl.ok("apply", "--server-side", "--dry-run=server", "-f", third, *scope)
    assert dry == f"{kind.qualified}/{name} serverside-applied (server dry run)\n"
    assert kubectl.stored(kind, name, namespace).json() == after


def test_apply_server_side_after_client_side_r10(kubectl: KindKubectl) -> None:
    """R10: ``apply --server-side`` over an object made by client-side ``apply`` (kubectl's
    follow-ups for the last-applied annotation) stores the change."""
    name, namespace = f"csa-ssa-{kubectl.tag}", f"ns-apply-{kubectl.tag}"
    first = kubectl.write(f"{name}.yaml", task(CUSTOM, name, priority=2))
    out = kubectl.ok("apply", "-f", first, "-n", namespace)
    assert out == f"{CUSTOM.qualified}/{name} created\n"
    second = kubectl.write(f"{name}-2.yaml", task(CUSTOM, name, priority=7))
    out = kubectl.ok("apply", "--server-side", "-f", second, "-n", namespace)
    assert out == f"{CUSTOM.qualified}/{name} serverside-applied\n"
    assert _spec(kubectl, CUSTOM, name, namespace)["priority"] == 7


def test_apply_server_side_syncs_last_applied_annotation_r10(kubectl: KindKubectl) -> None:
    """R10: an apply by field manager ``kubectl`` to an object carrying the client-side
    last-applied annotation rewrites that annotation to the applied configuration
    (kube-apiserver's lastAppliedUpdater, for custom resources too); kubectl's follow-up
    apply as ``kubectl-last-applied`` re-sends the annotation it got back. A later
    client-side ``apply`` diffs against it."""
    name, namespace = f"csa-sync-{kubectl.tag}", f"ns-apply-{kubectl.tag}"
    first = kubectl.write(f"{name}.yaml", task(CUSTOM, name, priority=2))
    kubectl.ok("apply", "-f", first, "-n", namespace)
    second = kubectl.write(f"{name}-2.yaml", task(CUSTOM, name, priority=7, details="ssa"))
    kubectl.ok("apply", "--server-side", "-f", second, "-n", namespace)
    annotations = _metadata(kubectl, CUSTOM, name, namespace)["annotations"]
    last = json.loads(annotations["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"] == {"priority": 7, "deadline": DEADLINE, "details": "ssa"}, last


# label, annotate, patch


@KINDS
def test_label_adds_and_removes_r10(kubectl: KindKubectl, kind: Kind) -> None:
    """R10: ``label`` merge-patches labels in; ``k-`` removes one (a null in the patch)."""
    name, namespace = f"label-{kubectl.tag}", f"ns-patch-{kubectl.tag}"
    scope = _scope(kind, namespace)
    kubectl.create(kind, namespace, task(kind, name, labels={"keep": "yes"}))
    out = kubectl.ok("label", kind.short, name, "team=a", "tier=gold", *scope)
    assert out == f"{kind.qualified}/{name} labeled\n"
    labels = {"keep": "yes", "team": "a", "tier": "gold"}
    assert _metadata(kubectl, kind, name, namespace)["labels"] == labels
    refused = kubectl.fails("label", kind.short, name, "team=b", *scope)
    assert "'team' already has a value (a), and --overwrite is false" in refused
    out = kubectl.ok("label", kind.short, name, "team=b", "--overwrite", *scope)
    assert out == f"{kind.qualified}/{name} labeled\n"
    out = kubectl.ok("label", kind.plural, name, "tier-", *scope)
    assert out == f"{kind.qualified}/{name} unlabeled\n"
    assert _metadata(kubectl, kind, name, namespace)["labels"] == {"keep": "yes", "team": "b"}
    selected = kubectl.ok("get", kind.plural, "-l", "team=b", "-o", "name", *scope)
    assert f"{kind.qualified}/{name}" in selected.split()


@KINDS
def test_annotate_adds_and_removes_r10(kubectl: KindKubectl, kind: Kind) -> None:
    """R10: ``annotate`` merge-patches annotations in and out."""
    name, namespace = f"annotate-{kubectl.tag}", f"ns-patch-{kubectl.tag}"
    scope = _scope(kind, namespace)
    kubectl.create(kind, namespace, task(kind, name))
    out = kubectl.ok("annotate", kind.short, name, "note=hello world", "owner=me", *scope)
    verb = "annotate" if kubectl.version == "1.27" else "annotated"  # kubectl 1.27's wording
    assert out == f"{kind.qualified}/{name} {verb}\n"
    annotations = _metadata(kubectl, kind, name, namespace)["annotations"]
    assert annotations == {"note": "hello world", "owner": "me"}
    kubectl.ok("annotate", kind.short, name, "owner-", *scope)
    assert _metadata(kubectl, kind, name, namespace)["annotations"] == {"note": "hello world"}


@KINDS
def test_patch_merge_and_json_r10(kubectl: KindKubectl, kind: Kind) -> None:
    """R10: ``--type=merge`` (null deletes) and ``--type=json`` (a failed ``test`` is refused
    and changes nothing); a patch that changes nothing prints ``(no change)``."""
    name, namespace = f"patch-{kubectl.tag}", f"ns-patch-{kubectl.tag}"
    scope = [kind.plural, name, *_scope(kind, namespace)]
    kubectl.create(kind, namespace, task(kind, name, priority=3, details="to be removed"))
    patched = f"{kind.qualified}/{name} patched\n"
    merge = '{"spec":{"priority":5,"details":null,"taskState":"Finished"}}'
    assert kubectl.ok("patch", *scope, "--type=merge", "-p", merge) == patched
    expected = {"priority": 5, "deadline": DEADLINE, "taskState": "Finished"}
    assert _spec(kubectl, kind, name, namespace) == expected
    before = kubectl.stored(kind, name, namespace).json()["metadata"]["resourceVersion"]
    same = kubectl.ok("patch", *scope, "--type=merge", "-p", '{"spec":{"priority":5}}')
    assert same == f"{kind.qualified}/{name} patched (no change)\n"
    assert kubectl.stored(kind, name, namespace).json()["metadata"]["resourceVersion"] == before
    ops = [
        {"op": "test", "path": "/spec/priority", "value": 5},
        {"op": "replace", "path": "/spec/priority", "value": 9},
        {"op": "add", "path": "/spec/details", "value": "from json patch"},
    ]
    assert kubectl.ok("patch", *scope, "--type=json", "-p", json.dumps(ops)) == patched
    expected = {**expected, "priority": 9, "details": "from json patch"}
    assert _spec(kubectl, kind, name, namespace) == expected
    failing = [
        {"op": "test", "path": "/spec/priority", "value": 5},
        {"op": "replace", "path": "/spec/priority", "value": 1},
    ]
    kubectl.fails("patch", *scope, "--type=json", "-p", json.dumps(failing))
    assert _spec(kubectl, kind, name, namespace) == expected


@KINDS
def test_patch_strategic_is_unsupported_r10(kubectl: KindKubectl, kind: Kind) -> None:
    """R10: plain ``patch`` sends a strategic merge patch; the server answers 415 as for
    custom resources and kubectl reports it without falling back."""
    name, namespace = f"smp-{kubectl.tag}", f"ns-patch-{kubectl.tag}"
    kubectl.create(kind, namespace, task(kind, name, priority=3))
    out = kubectl.fails(
        "patch", kind.plural, name, "-p", '{"spec":{"priority":4}}', *_scope(kind, namespace)
    )
    assert "application/strategic-merge-patch+json is not supported" in out
    assert _spec(kubectl, kind, name, namespace)["priority"] == 3


# edit


def _editor(kubectl: KindKubectl, script: str) -> dict[str, str]:
    """An ``EDITOR`` that runs ``script`` (POSIX sh) on the file kubectl hands it as $1."""
    path = kubectl.workdir / "editor.sh"
    path.write_text(f"#!/bin/sh\nset -e\n{script}\n")
    path.chmod(0o755)
    return {"EDITOR": str(path)}


@KINDS
def test_edit_with_scripted_editor_r10(kubectl: KindKubectl, kind: Kind) -> None:
    """R10: ``edit`` opens the object in ``$EDITOR`` and merge-patches what was changed; an
    edit that changes nothing is cancelled."""
    name, namespace = f"edit-{kubectl.tag}", f"ns-edit-{kubectl.tag}"
    scope = [kind.plural, name, *_scope(kind, namespace)]
    kubectl.create(kind, namespace, task(kind, name, priority=3, details="before"))
    before = kubectl.stored(kind, name, namespace).json()
    untouched = _run_env(kubectl, _editor(kubectl, "true"), "edit", *scope)
    assert untouched.returncode == 0, describe(untouched)
    assert "Edit cancelled, no changes made." in untouched.stdout + untouched.stderr
    assert kubectl.stored(kind, name, namespace).json() == before
    script = (
        "sed -i -e 's/^\\( *priority:\\) 3$/\\1 6/'"
        " -e 's/^\\( *details:\\) before$/\\1 after/' \"$1\""
    )
    edited = _run_env(kubectl, _editor(kubectl, script), "edit", *scope)
    assert edited.returncode == 0, describe(edited)
    assert edited.stdout == f"{kind.qualified}/{name} edited\n", describe(edited)
    after = kubectl.stored(kind, name, namespace).json()
    assert after["spec"] == {**before["spec"], "priority": 6, "details": "after"}
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1


# delete by label selector


def test_delete_by_label_selector_r11(kubectl: KindKubectl) -> None:
    """R11: ``delete -l`` lists with the selector and deletes exactly the matching objects."""
    namespace, names = _labelled(kubectl, "dellabel")
    out = kubectl.ok("delete", "customtasks", "-n", namespace, "-l", "a=x")
    deleted = sorted(out.splitlines())
    assert deleted == sorted(f'{CUSTOM.qualified} "{names[s]}" deleted' for s in ("ax", "axb"))
    for short, name in names.items():
        code = kubectl.stored(CUSTOM, name, namespace).status_code
        assert code == (404 if short in ("ax", "axb") else 200), (short, code)
    out = kubectl.ok("delete", "customtasks", "-n", namespace, "-l", "a in (y,z),!b")
    assert sorted(out.splitlines()) == sorted(
        f'{CUSTOM.qualified} "{names[s]}" deleted' for s in ("ay", "az")
    )
    remaining = kubectl.ok("get", "customtasks", "-n", namespace, "-o", "name")
    assert remaining == ""
    nothing = kubectl.run("delete", "customtasks", "-n", namespace, "-l", "a=x")
    assert nothing.returncode == 0, describe(nothing)
    assert "No resources found" in nothing.stdout + nothing.stderr
