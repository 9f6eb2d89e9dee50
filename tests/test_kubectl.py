"""Every ``kubectl.1.NN`` next to the ``kubectl`` on PATH against the real server.

The ``kubectl`` on PATH may be a dispatcher that picks a binary by the server's version, so
the versioned binaries are called directly, each test with its own ``--cache-dir``. The
server is shared by all tests of a process: every test names its objects and namespaces
after the kubectl version (``ns-1-29``) and after itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.servers import Server

GROUP = "search.task.example.example.com"
GV = f"/apis/{GROUP}/v1"
TIMEOUT = 60  # seconds for one kubectl run
DEADLINE = "2030-01-01T00:00:00Z"


def _client_version(binary: Path) -> str:
    """``1.NN`` as reported by a kubectl binary itself."""
    out = subprocess.run(
        [str(binary), "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout
    client = json.loads(out)["clientVersion"]
    return f"{client['major']}.{re.sub(r'[^0-9]', '', client['minor'])}"


def _binaries() -> dict[str, Path]:
    """The ``kubectl.1.NN`` beside the ``kubectl`` on PATH, by version; else that kubectl."""
    found = shutil.which("kubectl")
    if found is None:
        return {}
    plain = Path(found).resolve()
    versioned = {
        match.group(1): path
        for path in plain.parent.iterdir()
        if (match := re.fullmatch(r"kubectl\.(1\.\d+)", path.name)) and path.is_file()
    }
    if not versioned:  # a real kubectl rather than a dispatcher
        return {_client_version(plain): plain}
    return dict(sorted(versioned.items(), key=lambda item: int(item[0].split(".")[1])))


BINARIES = _binaries()
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


class _QuotingDumper(yaml.SafeDumper):
    """Quotes every string: kubectl reads YAML 1.1, where a bare ``y`` is a boolean."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        return self.represent_scalar("tag:yaml.org,2002:str", data, style='"')


_QuotingDumper.add_representer(str, _QuotingDumper.represent_str)


@dataclass(frozen=True)
class Kubectl:
    """One kubectl version, talking to the test server with a private cache and work dir."""

    version: str
    binary: Path
    kubeconfig: str
    workdir: Path
    server: Server

    @property
    def tag(self) -> str:
        """The version as a name part: ``1-29``."""
        return self.version.replace(".", "-")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.binary), "--kubeconfig", self.kubeconfig]
        command += ["--cache-dir", str(self.workdir / "cache"), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)

    def ok(self, *args: str) -> str:
        """Run; it must succeed. Returns stdout."""
        result = self.run(*args)
        assert result.returncode == 0, _describe(result)
        return result.stdout

    def fails(self, *args: str) -> str:
        """Run; it must fail. Returns stdout and stderr."""
        result = self.run(*args)
        assert result.returncode != 0, _describe(result)
        return result.stdout + result.stderr

    def write(self, filename: str, *docs: dict[str, Any]) -> str:
        """A manifest file, JSON or (multi-document) YAML by its extension."""
        path = self.workdir / filename
        if path.suffix == ".json":
            assert len(docs) == 1
            path.write_text(json.dumps(docs[0], indent=2))
        else:
            path.write_text(yaml.dump_all(docs, Dumper=_QuotingDumper))
        return str(path)

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


@pytest.fixture(params=list(BINARIES))
def kubectl(request: pytest.FixtureRequest, server: Server, tmp_path: Path) -> Kubectl:
    version: str = request.param
    return Kubectl(version, BINARIES[version], server.kubeconfig(), tmp_path, server)


def _describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"{result.args}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"


def _scope(kind: Kind, namespace: str) -> list[str]:
    return ["-n", namespace] if kind.namespaced else []


def _table(out: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of kubectl's column output, split on runs of spaces."""
    lines = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.strip()]
    assert lines, "no output"
    return lines[0], lines[1:]


# discovery and OpenAPI


def test_api_resources_lists_both_kinds_d1_d2(kubectl: Kubectl) -> None:
    """D1/D2: names, short names, group version, scope and kind of both resources."""
    header, rows = _table(kubectl.ok("api-resources", f"--api-group={GROUP}"))
    assert header == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert sorted(rows) == [
        ["clustertasks", "cltask", f"{GROUP}/v1", "false", "ClusterTask"],
        ["customtasks", "cutask", f"{GROUP}/v1", "true", "CustomTask"],
    ]


def test_explain_prints_field_descriptions_o4(kubectl: Kubectl) -> None:
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
def test_create_from_file_r8(kubectl: Kubectl, kind: Kind, fmt: str) -> None:
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
def test_create_dry_run_server_persists_nothing_r8(kubectl: Kubectl, kind: Kind) -> None:
    """R8: ``--dry-run=server`` validates and answers, and stores nothing."""
    name, namespace = f"dry-{kubectl.tag}", f"ns-{kubectl.tag}"
    path = kubectl.write(f"{name}.yaml", task(kind, name))
    out = kubectl.ok("create", "-f", path, "--dry-run=server", *_scope(kind, namespace))
    assert out == f"{kind.qualified}/{name} created (server dry run)\n"
    assert kubectl.stored(kind, name, namespace).status_code == 404


@KINDS
@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry-run"])
def test_create_duplicate_is_already_exists_r3_r8(
    kubectl: Kubectl, kind: Kind, dry_run: bool
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
def test_invalid_object_is_rejected_with_field_errors_r3(kubectl: Kubectl, kind: Kind) -> None:
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
def test_raw_create_and_replace_r2_r8_r9(kubectl: Kubectl, kind: Kind) -> None:
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


def _labelled(kubectl: Kubectl, test: str) -> tuple[str, dict[str, str]]:
    """Four CustomTasks labelled a=x, a=y, a=z, a=x+b=1 in a namespace of ``test``'s own.

    Returns the namespace and, by short name (``ax`` ...), kubectl's name of each object."""
    namespace = f"{test}-{kubectl.tag}"
    objects = {"ax": {"a": "x"}, "ay": {"a": "y"}, "az": {"a": "z"}, "axb": {"a": "x", "b": "1"}}
    names = {short: f"{test}-{short}-{kubectl.tag}" for short in objects}
    kubectl.create(CUSTOM, namespace, *(task(CUSTOM, names[s], labels=objects[s]) for s in names))
    return namespace, names


@KINDS
def test_get_prints_table_columns_r7(kubectl: Kubectl, kind: Kind) -> None:
    """R7: the server's Table columns; ``-o wide`` adds the priority-1 column."""
    name, namespace = f"table-{kubectl.tag}", f"ns-table-{kubectl.tag}"
    kubectl.create(kind, namespace, task(kind, name, priority=9, details="wide only"))
    header, rows = _table(kubectl.ok("get", kind.short, name, *_scope(kind, namespace)))
    assert header == ["NAME", "PRIORITY", "DEADLINE", "STATE", "AGE"]
    assert [row[:4] for row in rows] == [[name, "9", DEADLINE, "Pending"]]
    assert re.fullmatch(r"\d+s|\d+m\d*s?", rows[0][4]), rows
    wide = kubectl.ok("get", kind.plural, name, "-o", "wide", *_scope(kind, namespace))
    header, rows = _table(wide)
    assert header == ["NAME", "PRIORITY", "DEADLINE", "STATE", "AGE", "DETAILS"]
    assert rows[0][5] == "wide only"


@KINDS
def test_get_output_yaml_r4(kubectl: Kubectl, kind: Kind) -> None:
    """R4: ``-o yaml`` prints the whole stored object."""
    name, namespace = f"yaml-{kubectl.tag}", f"ns-{kubectl.tag}"
    kubectl.create(kind, namespace, task(kind, name, priority=5, labels={"k": "v"}))
    obj = yaml.safe_load(
        kubectl.ok("get", kind.plural, name, "-o", "yaml", *_scope(kind, namespace))
    )
    assert obj == kubectl.stored(kind, name, namespace).json()
    assert (obj["apiVersion"], obj["kind"]) == (f"{GROUP}/v1", kind.kind)
    assert obj["metadata"]["labels"] == {"k": "v"}
    assert obj["spec"]["priority"] == 5


def test_get_all_namespaces_shows_namespace_column_r1_r7(kubectl: Kubectl) -> None:
    """R1/R7: ``get -A`` lists across namespaces; NAMESPACE comes from the rows' objects."""
    name = f"every-{kubectl.tag}"
    namespaces = [f"ns-a-{kubectl.tag}", f"ns-b-{kubectl.tag}"]
    for namespace in namespaces:
        kubectl.create(CUSTOM, namespace, task(CUSTOM, name))
    header, rows = _table(kubectl.ok("get", "customtasks", "-A"))
    assert header == ["NAMESPACE", "NAME", "PRIORITY", "DEADLINE", "STATE", "AGE"]
    assert sorted(row[0] for row in rows if row[1] == name) == namespaces


def test_get_label_selector_r5(kubectl: Kubectl) -> None:
    """R1/R5: set-based and existence requirements, with commas inside parentheses."""
    namespace, names = _labelled(kubectl, "labels")
    out = kubectl.ok("get", "customtasks", "-n", namespace, "-l", "a in (x,y),!b", "-o", "name")
    assert sorted(out.split()) == sorted(f"{CUSTOM.qualified}/{names[n]}" for n in ("ax", "ay"))
    _, rows = _table(kubectl.ok("get", "cutask", "-n", namespace, "-l", "a notin (x),b!=1"))
    assert sorted(row[0] for row in rows) == sorted([names["ay"], names["az"]])


def test_get_field_selector_r5(kubectl: Kubectl) -> None:
    """R5: ``metadata.name`` (as ``get NAME -w`` and ``wait`` use it) selects one object."""
    namespace, names = _labelled(kubectl, "fields")
    selector = f"--field-selector=metadata.name={names['az']}"
    out = kubectl.ok("get", "customtasks", "-n", namespace, selector, "-o", "name")
    assert out.split() == [f"{CUSTOM.qualified}/{names['az']}"]
    _, rows = _table(kubectl.ok("get", "customtasks", "-A", selector))
    assert [row[:2] for row in rows] == [[namespace, names["az"]]]


def test_get_chunk_size_follows_continue_r5(kubectl: Kubectl) -> None:
    """R5: ``--chunk-size=1`` pages with limit/continue and still gets every object."""
    namespace, names = _labelled(kubectl, "chunks")
    paged = kubectl.run(
        "get", "customtasks", "-n", namespace, "--chunk-size=1", "-o", "name", "-v=6"
    )
    assert paged.returncode == 0, _describe(paged)
    assert sorted(paged.stdout.split()) == sorted(f"{CUSTOM.qualified}/{n}" for n in names.values())
    requests_made = [line for line in paged.stderr.splitlines() if "/customtasks?" in line]
    assert sum("continue=" in line for line in requests_made) >= len(names) - 1, paged.stderr
    header, rows = _table(kubectl.ok("get", "customtasks", "-n", namespace, "--chunk-size=1"))
    assert header[0] == "NAME"
    assert sorted(row[0] for row in rows) == sorted(names.values())


# replace and delete


@KINDS
def test_replace_from_file_r9(kubectl: Kubectl, kind: Kind) -> None:
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
def test_delete_waits_until_gone_r11(kubectl: Kubectl, kind: Kind) -> None:
    """R11: ``delete`` answers, kubectl waits for the 404; a second delete is NotFound."""
    name, namespace = f"delete-{kubectl.tag}", f"ns-{kubectl.tag}"
    kubectl.create(kind, namespace, task(kind, name))
    out = kubectl.ok("delete", kind.short, name, *_scope(kind, namespace))
    assert out == f'{kind.qualified} "{name}" deleted\n'
    assert kubectl.stored(kind, name, namespace).status_code == 404
    again = kubectl.fails("delete", kind.plural, name, *_scope(kind, namespace))
    assert f'Error from server (NotFound): {kind.plural}.{GROUP} "{name}" not found' in again


# watch


def test_get_watch_prints_each_change_r6(kubectl: Kubectl) -> None:
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
