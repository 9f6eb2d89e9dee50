"""The tutorial's search (part 3), ``details?q=``, on the real server over both stores, with
the fake cluster's Tasks indexed by the server and labelled by the real controller.

kubectl (every version) runs the tutorial's own command line; the rest proves what the
tutorial got wrong: every match is returned (bleve stopped at 10), ``+name:`` matches whole
names, a long name still makes a valid label, tasks made before the server started are found,
dry runs and deletions leave nothing behind, hits page exactly once, and a caller sees only
hits it could list itself.
"""

from __future__ import annotations

import base64
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.certs import new_ca
from k8s.client import Cluster
from k8s.controller import Controller
from k8s.taskindex import INDEXER_LABEL
from tests.fakes.cluster import FakeCluster, authentication_data
from tests.fakes.objects import NAMESPACES, TASKS
from tests.support.kubectl import BINARIES, Kubectl, describe, table
from tests.support.postgres import create_database, postgres_url_fixture  # noqa: F401
from tests.support.servers import Pki, Server, run_server, shell_join

GV = "/apis/search.task.example.example.com/v1"
DETAILS = f"{GV}/details"
JSON = {"Accept": "application/json"}
BULK = 150
LONG_NAMESPACE = "ns-" + "n" * 57  # 60 characters, as the next name
LONG_NAME = "task-" + "l" * 55
TUTORIAL_QUERY = "%2Bdetails:task-sample-4 %2Bnamespace:default"


def task(namespace: str, name: str, details: str, priority: int = 3) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"priority": priority, "deadline": "2030-01-01T00:00:00Z", "details": details},
    }


def eventually(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(0.05)


@dataclass
class Setup:
    server: Server
    cluster: FakeCluster
    fake_kubeconfig: str

    def search(
        self, q: str, session: requests.Session | None = None, *, limit: str = "", token: str = ""
    ) -> Any:
        """The JSON answer (a SearchHitList) of ``q``, a page of it with ``limit``."""
        params = {"limit": limit, "continue": token}
        params = {key: value for key, value in params.items() if value}
        answer = (session or self.server.session()).get(
            self.server.url + DETAILS, params={"q": q, **params}, headers=JSON, timeout=30
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def names(self, q: str, session: requests.Session | None = None) -> list[str]:
        return sorted(item["metadata"]["name"] for item in self.search(q, session)["items"])

    def plain(self, q: str) -> list[str]:
        answer = self.server.session().get(self.server.url + DETAILS, params={"q": q}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"].startswith("text/plain")
        return answer.text.split(",") if answer.text else []


def _seed_before_start(cluster: FakeCluster) -> None:
    """Tasks that exist before the server starts: only a list can find them; the namespaces
    the server's own kinds are written in."""
    for namespace in ("own", "ops"):
        cluster.objects.put(NAMESPACES, {"metadata": {"name": namespace}})
    for n in (3, 4):
        name = f"task-sample-{n}"
        cluster.objects.put(TASKS, task("default", name, f"Details of {name}", priority=n))
    for i in range(BULK):
        cluster.objects.put(TASKS, task("bulk", f"bulk-{i:03d}", f"nightly bulk-job number {i}"))
    cluster.objects.put(TASKS, task(LONG_NAMESPACE, LONG_NAME, "a task with a long name"))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp(f"search-{request.param}")
    env: dict[str, str] = {}
    if request.param == "postgres":
        env["APISERVER_DATABASE_URL"] = create_database(request.getfixturevalue("postgres_url"))
    with FakeCluster() as cluster:
        _seed_before_start(cluster)
        kubeconfig = str(cluster.kubeconfig(directory))
        pki = Pki.create(directory / "pki")
        cluster.configmap = authentication_data(pki.ca.cert_pem, new_ca("front-proxy").cert_pem)
        env["APISERVER_KUBECONFIG"] = kubeconfig
        client = Cluster.from_environment(kubeconfig)
        assert client is not None
        stop = threading.Event()
        controller = threading.Thread(
            target=Controller(client, stop).run, args=(stop,), daemon=True
        )
        controller.start()
        try:
            with run_server(directory, pki=pki, env=env) as server:
                ready = Setup(server, cluster, kubeconfig)
                eventually(lambda: len(ready.names("bulk-job")) == BULK, "indexed")
                yield ready
        finally:
            stop.set()
            controller.join(timeout=10)


@pytest.fixture(params=list(BINARIES))
def kubectl(request: pytest.FixtureRequest, setup: Setup, tmp_path: Path) -> Kubectl:
    version: str = request.param
    server = setup.server
    return Kubectl(version, BINARIES[version], server.kubeconfig(), tmp_path, server)


def labelled(setup: Setup, namespace: str, name: str) -> str:
    """The task's task-indexer label, once the controller has set it for its generation."""
    found: dict[str, str] = {}

    def current() -> bool:
        obj = setup.cluster.objects.get(TASKS, namespace, name) or {}
        metadata = obj.get("metadata") or {}
        value = str((metadata.get("labels") or {}).get(INDEXER_LABEL, ""))
        found["value"] = value
        return value.endswith(f".{metadata.get('generation')}")

    eventually(current, f"{namespace}/{name} labelled")
    return found["value"]


# the tutorial's command line, with every kubectl


def test_the_tutorials_command_line_lists_the_matching_task(setup: Setup, kubectl: Kubectl) -> None:
    labelled(setup, "default", "task-sample-4")
    labelled(setup, "default", "task-sample-3")
    search = shell_join([str(kubectl.binary), "--kubeconfig", kubectl.kubeconfig, "get"])
    search += f" --raw '/apis/search.task.example.example.com/v1/details?q={TUTORIAL_QUERY}'"
    tasks = shell_join([str(kubectl.binary), "--kubeconfig", setup.fake_kubeconfig, "get"])
    command = f'{tasks} tasks --selector "{INDEXER_LABEL} in ($({search}))"'
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, describe(result)
    header, rows = table(result.stdout)
    assert header[0] == "NAME" and [row[0] for row in rows] == ["task-sample-4"]


def test_discovery_lists_details_and_kubectl_still_reads_the_group(
    setup: Setup, kubectl: Kubectl
) -> None:
    listed = setup.server.session().get(setup.server.url + GV, timeout=10).json()
    (details,) = [r for r in listed["resources"] if r["name"] == "details"]
    assert details == {
        "name": "details",
        "singularName": "",
        "namespaced": False,
        "kind": "",
        "verbs": ["get"],
    }
    resources = kubectl.ok("api-resources", "--api-group=search.task.example.example.com")
    assert "customtasks" in resources and "clustertasks" in resources
    raw = kubectl.ok("get", "--raw", f"{DETAILS}?q=%2Bname:task-sample-4")
    assert raw.strip() == "default.task-sample-4.1"
    kubectl.ok("get", "alltasks", "-A")  # details is in no category: nothing lists it


# what the tutorial got wrong


def test_every_match_is_returned_not_ten(setup: Setup) -> None:
    plain = setup.plain("bulk-job")
    assert len(plain) == len(set(plain)) == BULK
    assert "bulk.bulk-000.1" in plain  # made before the server started
    assert len(setup.search("bulk-job")["items"]) == BULK


def test_paging_with_limit_7_returns_each_hit_exactly_once(setup: Setup) -> None:
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = setup.search("bulk-job", limit="7", token=token)
        assert len(page["items"]) <= 7
        seen += [item["metadata"]["name"] for item in page["items"]]
        pages += 1
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert pages == -(-BULK // 7)
    assert sorted(seen) == [f"bulk-{i:03d}" for i in range(BULK)]


def test_a_name_term_matches_the_whole_name_only(setup: Setup) -> None:
    assert setup.names("+name:task-sample-4") == ["task-sample-4"]
    assert setup.names("+name:task-sample* +namespace:default") == [
        "task-sample-3",
        "task-sample-4",
    ]
    assert setup.plain("+name:task-sample-4 +namespace:default") == ["default.task-sample-4.1"]


def test_a_60_character_name_and_namespace_make_a_valid_label_and_are_found(
    setup: Setup,
) -> None:
    value = labelled(setup, LONG_NAMESPACE, LONG_NAME)
    assert len(value) <= 63 and value.endswith(".1")
    assert setup.plain(f"+name:{LONG_NAME}") == [value]
    (hit,) = setup.search(f"+namespace:{LONG_NAMESPACE}")["items"]
    assert (hit["kind"], hit["apiVersion"], hit["key"]) == ("Task", "example.example.com/v1", value)


def test_a_task_change_is_found_and_a_deleted_task_leaves_the_index(setup: Setup) -> None:
    setup.cluster.objects.put(TASKS, task("live", "moving", "first words here"))
    eventually(lambda: setup.names("+namespace:live +first") == ["moving"], "a new task found")
    current = setup.cluster.objects.get(TASKS, "live", "moving")
    assert current is not None
    current["spec"]["details"] = "second words now"
    setup.cluster.objects.update(TASKS, "live", "moving", current)
    eventually(lambda: setup.names("+namespace:live +second") == ["moving"], "a change found")
    assert setup.names("+namespace:live +first") == []  # the latest generation only
    assert setup.search("+namespace:live")["items"][0]["metadata"]["generation"] == 2
    labelled(setup, "live", "moving")  # the controller's finalizer is on: the delete waits
    setup.cluster.objects.delete(TASKS, "live", "moving")
    eventually(lambda: setup.names("+namespace:live") == [], "a deleted task gone")


def test_a_dry_run_write_leaves_nothing_and_a_delete_leaves_at_once(
    setup: Setup, tmp_path: Path
) -> None:
    session = setup.server.session()
    url = f"{setup.server.url}{GV}/namespaces/own/customtasks"
    body = task("own", "dry", "a dry-run-only task")
    dry = session.post(url, json=body, params={"dryRun": "All"}, timeout=10)
    assert dry.status_code == 201 and setup.names("dry-run-only") == []
    body = task("own", "kept", "a kept-then-deleted task")
    assert session.post(url, json=body, timeout=10).status_code == 201
    assert setup.names("kept-then-deleted") == ["kept"]  # in the write's transaction
    assert session.delete(f"{url}/kept", timeout=10).status_code == 200
    assert setup.names("kept-then-deleted") == []


OPERATOR_TASKS = {
    "alpha": ("Rebuild the search shards", 2),
    "beta": ("rebuild shards, then page the on-call", 5),
    "gamma": ('Say "hello world" to the x-ray-9 unit', 8),
    "delta": ("A café at 10:30", 9),
}
OPERATOR_QUERIES = {
    "shards": ["alpha", "beta"],
    "+rebuild -page": ["alpha"],
    '"search shards"': ["alpha"],
    '"shards search"': [],
    "details:rebuild": ["alpha", "beta"],
    "rebui*": ["alpha", "beta"],
    "+namespace:ops +priority:>=8": ["delta", "gamma"],
    "+namespace:ops +priority:<5": ["alpha"],
    "+shards +priority:5": ["beta"],
    "x-ray-9": ["gamma"],  # hyphens: the words as a phrase, never a syntax error
    "ray-x": [],
    '"\\"hello world\\""': ["gamma"],  # escaped quotes inside a phrase
    '\\"hello': ["gamma"],
    '"10:30"': ["delta"],
    "+namespace:ops +name:gam*": ["gamma"],
    "+kind:customtask +CAFÉ": ["delta"],
    "+namespace:ops +generation:1 -name:alpha -name:beta -name:gamma": ["delta"],
    "+namespace:ops -shards": ["delta", "gamma"],
}


def test_each_operator_of_the_query_language(setup: Setup) -> None:
    session = setup.server.session()
    url = f"{setup.server.url}{GV}/namespaces/ops/customtasks"
    for name, (details, priority) in OPERATOR_TASKS.items():
        created = session.post(url, json=task("ops", name, details, priority), timeout=10)
        assert created.status_code in (201, 409), created.text
    for q, expected in OPERATOR_QUERIES.items():
        assert setup.names(q) == expected, q


def test_a_user_sees_only_hits_it_may_list(setup: Setup) -> None:
    def decide(spec: dict[str, Any]) -> tuple[bool, str]:
        attributes = spec.get("resourceAttributes") or {}
        resource, verb = attributes.get("resource"), attributes.get("verb")
        if resource == "details":
            return verb in ("get", "list"), ""
        return (resource, verb, attributes.get("namespace")) == ("tasks", "list", "default"), ""

    previous, setup.cluster.decide = setup.cluster.decide, decide
    try:
        alice = setup.server.session("alice", groups=("team",))
        assert setup.names("bulk-job", alice) == []
        assert setup.names("+name:task-sample*", alice) == ["task-sample-3", "task-sample-4"]
        assert setup.names("bulk-job") != []  # the admin sees them
        nobody = setup.server.session("mallory", groups=("team",))
        setup.cluster.decide = lambda spec: (
            (spec.get("resourceAttributes") or {}).get("verb") == "list",
            "",
        )
        refused = nobody.get(setup.server.url + DETAILS, params={"q": "x"}, timeout=10)
        assert refused.status_code == 403
        assert refused.json()["message"] == (
            'details.search.task.example.example.com is forbidden: User "mallory" cannot get '
            'resource "details" in API group "search.task.example.example.com" at the cluster '
            "scope"
        )
    finally:
        setup.cluster.decide = previous


def test_errors_are_statuses_that_say_what_is_wrong(setup: Setup) -> None:
    session = setup.server.session()

    def status(params: dict[str, str], headers: dict[str, str] | None = None) -> Any:
        answer = session.get(setup.server.url + DETAILS, params=params, headers=headers, timeout=10)
        assert answer.status_code == 400
        body = answer.json()
        assert (body["kind"], body["reason"], body["code"]) == ("Status", "BadRequest", 400)
        return body["message"]

    assert status({}) == "missing query parameter 'q'"
    assert status({"q": 'shards "unclosed'}) == (
        "invalid query: a phrase with no closing quote at character 8"
    )
    assert "Accept: application/json" in status({"q": "shards", "limit": "5"})
    token = setup.search("bulk-job", limit="3")["metadata"]["continue"]
    assert "another query" in status({"q": "shards", "continue": token}, JSON)
    assert status({"q": "shards", "continue": "garbage"}, JSON) == "continue key is not valid"
    unsigned = base64.urlsafe_b64encode(b'{"v":"details/v1","after":[0,"r","n","x"]}').decode()
    assert status({"q": "shards", "continue": unsigned}, JSON) == "continue key is not valid"


def test_a_table_answer_has_the_hit_columns(setup: Setup) -> None:
    answer = setup.server.session().get(
        setup.server.url + DETAILS,
        params={"q": "+name:task-sample-4 details"},
        headers={"Accept": "application/json;as=Table;g=meta.k8s.io;v=v1"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    names = [c["name"] for c in body["columnDefinitions"]]
    assert names == ["Kind", "Namespace", "Name", "Generation", "Score", "Details"]
    (row,) = body["rows"]
    assert row["cells"][:4] == ["Task", "default", "task-sample-4", 1]
    assert "[Details]" in row["cells"][5]
    assert row["object"]["metadata"]["name"] == "task-sample-4"
