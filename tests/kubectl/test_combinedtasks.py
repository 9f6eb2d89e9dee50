"""combinedtasks on the real server, reading Tasks and Events from the fake cluster.

kubectl (every version) lists, gets and watches them; the fake counts the cluster calls, so the
batching is proven by numbers: a list costs one Task LIST and one Events LIST whatever the
number of tasks, a burst of task changes on a watch one Events LIST per namespace per TTL.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import yaml

from devtools.certs import new_ca
from tests.fakes.cluster import FakeCluster, authentication_data
from tests.fakes.objects import EVENTS, NAMESPACES, TASKS
from tests.support.kubectl import BINARIES, Kubectl, table
from tests.support.servers import Pki, Server, run_server

GV = "/apis/search.task.example.example.com/v1"
TASK_LISTS = r"/apis/example.example.com/v1(/namespaces/[^/]+)?/tasks"
EVENT_LISTS = r"/api/v1(/namespaces/[^/]+)?/events"
TTL = 1.0  # the server's Events cache window in these tests
COLUMNS = ["NAME", "PRIORITY", "DEADLINE", "STATE", "EVENTS", "LAST EVENT", "AGE"]


@dataclass
class Setup:
    server: Server
    cluster: FakeCluster

    def seed(self, namespace: str, name: str, events: int = 0, priority: int = 3) -> str:
        """A Task with ``events`` labelled Events (reasons Step0, Step1...); its uid."""
        task = self.cluster.objects.put(
            TASKS,
            {
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "priority": priority,
                    "deadline": "2030-01-01T00:00:00Z",
                    "taskState": "Pending",
                },
            },
        )
        uid = str(task["metadata"]["uid"])
        for i in range(events):
            self.record(namespace, name, uid, f"Step{i}", f"2026-01-01T00:00:{i:02d}Z")
        return uid

    def record(self, namespace: str, name: str, uid: str, reason: str, when: str) -> None:
        self.cluster.objects.put(
            EVENTS,
            {
                "metadata": {
                    "generateName": f"{name}.",
                    "namespace": namespace,
                    "labels": {"example.example.com/task-uid": uid},
                },
                "involvedObject": {
                    "kind": "Task",
                    "apiVersion": "example.example.com/v1",
                    "name": name,
                    "namespace": namespace,
                    "uid": uid,
                },
                "reason": reason,
                "message": f"{reason} happened",
                "type": "Normal",
                "firstTimestamp": when,
                "lastTimestamp": when,
                "count": 1,
            },
        )


@contextlib.contextmanager
def _server(directory: Path, cluster: FakeCluster, workers: int = 2) -> Iterator[Server]:
    pki = Pki.create(directory / "pki")
    cluster.configmap = authentication_data(pki.ca.cert_pem, new_ca("front-proxy").cert_pem)
    if cluster.objects.get(NAMESPACES, "", "default") is None:  # as in every cluster
        cluster.objects.put(NAMESPACES, {"metadata": {"name": "default"}})
    env = {
        "APISERVER_KUBECONFIG": str(cluster.kubeconfig(directory)),
        "APISERVER_EVENTS_CACHE_SECONDS": str(TTL),
    }
    with run_server(directory, pki=pki, env=env, workers=workers) as server:
        yield server


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with FakeCluster() as cluster, _server(tmp_path_factory.mktemp("combined"), cluster) as server:
        yield Setup(server, cluster)


@pytest.fixture(params=list(BINARIES))
def kubectl(request: pytest.FixtureRequest, setup: Setup, tmp_path: Path) -> Kubectl:
    version: str = request.param
    server = setup.server
    return Kubectl(version, BINARIES[version], server.kubeconfig(), tmp_path, server)


def _rows(out: str) -> dict[str, list[str]]:
    header, rows = table(out)
    named = header.index("NAME")
    return {row[named]: row for row in rows}


# kubectl


def test_get_across_namespaces_and_in_one_prints_the_task_columns(
    setup: Setup, kubectl: Kubectl
) -> None:
    ns = f"cb-{kubectl.tag}"
    setup.seed(ns, "busy", events=3, priority=7)
    setup.seed(ns, "quiet")
    setup.seed(f"{ns}-other", "elsewhere", events=1)
    header, _ = table(kubectl.ok("get", "combinedtasks", "-A"))
    assert header == ["NAMESPACE", *COLUMNS]
    everywhere = _rows(kubectl.ok("get", "combinedtasks", "-A"))
    assert everywhere["busy"][:7] == [
        ns,
        "busy",
        "7",
        "2030-01-01T00:00:00Z",
        "Pending",
        "3",
        "Step2",
    ]
    assert everywhere["elsewhere"][0] == f"{ns}-other"
    header, _ = table(kubectl.ok("get", "combinedtasks", "-n", ns))
    assert header == COLUMNS
    here = _rows(kubectl.ok("get", "combinedtasks", "-n", ns))
    assert set(here) == {"busy", "quiet"}
    assert here["busy"][4:6] == ["3", "Step2"]
    assert here["quiet"][4] == "0"


def test_get_one_as_yaml_is_a_combined_task_with_its_events_oldest_first(
    setup: Setup, kubectl: Kubectl
) -> None:
    ns = f"cb-yaml-{kubectl.tag}"
    uid = setup.seed(ns, "task-sample-5", events=3)
    got = yaml.safe_load(
        kubectl.ok("get", "combinedtasks", "task-sample-5", "-n", ns, "-o", "yaml")
    )
    assert (got["kind"], got["apiVersion"]) == (
        "CombinedTask",
        "search.task.example.example.com/v1",
    )
    assert got["metadata"]["uid"] == uid and got["spec"]["priority"] == 3
    assert [e["reason"] for e in got["status"]["events"]] == ["Step0", "Step1", "Step2"]
    # kubectl then looks the namespace up, which only the real kube-apiserver serves
    assert "Error from server (NotFound)" in kubectl.fails("get", "combinedtasks", "x", "-n", ns)
    missing = setup.server.session().get(f"{setup.server.url}{GV}/namespaces/{ns}/combinedtasks/x")
    assert (
        missing.json()["message"] == 'combinedtasks.search.task.example.example.com "x" not found'
    )


def test_an_empty_namespace_prints_no_resources_found(setup: Setup, kubectl: Kubectl) -> None:
    result = kubectl.run("get", "combinedtasks", "-n", f"cb-empty-{kubectl.tag}")
    assert result.returncode == 0
    assert result.stderr.strip() == f"No resources found in cb-empty-{kubectl.tag} namespace."
    url = f"{setup.server.url}{GV}/namespaces/cb-empty-{kubectl.tag}/combinedtasks"
    empty = setup.server.session().get(url).json()
    assert (empty["kind"], empty["items"]) == ("CombinedTaskList", [])


def test_explain_shows_the_events_of_the_schema(kubectl: Kubectl) -> None:
    explained = kubectl.ok("explain", "combinedtasks.status")
    assert "KIND:       CombinedTask" in explained
    assert "The core/v1 Events labelled example.example.com/task-uid" in explained


def test_watch_shows_a_task_change_and_a_newly_recorded_event(
    setup: Setup, kubectl: Kubectl
) -> None:
    ns = f"cb-watch-{kubectl.tag}"
    uid = setup.seed(ns, "watched", events=1, priority=2)
    lines: list[list[str]] = []
    command = [str(kubectl.binary), "--kubeconfig", kubectl.kubeconfig]
    command += ["--cache-dir", str(kubectl.workdir / "cache")]
    command += ["get", "combinedtasks", "-n", ns, "-w", "--request-timeout=30s"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as watching:
        reader = threading.Thread(target=_read_rows, args=(watching, lines), daemon=True)
        reader.start()
        try:
            _wait_for(lambda: len(lines) >= 2, "the initial row")
            task = setup.cluster.objects.get(TASKS, ns, "watched")
            assert task is not None
            task["spec"]["priority"] = 9
            setup.cluster.objects.update(TASKS, ns, "watched", task)
            _wait_for(lambda: any(row[1:2] == ["9"] for row in lines[2:]), "the task change")
            setup.record(ns, "watched", uid, "Finished", "2026-01-01T01:00:00Z")
            _wait_for(lambda: any(row[4:6] == ["2", "Finished"] for row in lines), "the event")
        finally:
            watching.terminate()
    assert lines[0] == COLUMNS
    assert lines[1][:6] == ["watched", "2", "2030-01-01T00:00:00Z", "Pending", "1", "Step0"]


def _read_rows(process: subprocess.Popen[str], rows: list[list[str]]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip():
            rows.append(table(line)[0])


def _wait_for(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"kubectl did not print {what}"
        time.sleep(0.05)


# counted at the fake


def _admin(setup: Setup) -> requests.Session:
    return setup.server.session()


def test_a_list_of_500_tasks_in_10_namespaces_costs_one_task_list_and_one_events_list(
    setup: Setup,
) -> None:
    namespaces = [f"cb-count-{i}" for i in range(10)]
    for ns in namespaces:
        for t in range(50):
            setup.seed(ns, f"t{t}", events=5)
    time.sleep(TTL + 0.2)  # whatever a worker cached has expired
    setup.cluster.requests.clear()
    listed = _admin(setup).get(f"{setup.server.url}{GV}/combinedtasks", timeout=60).json()
    mine = [i for i in listed["items"] if i["metadata"]["namespace"] in namespaces]
    assert len(mine) == 500 and all(len(i["status"]["events"]) == 5 for i in mine)
    assert listed["kind"] == "CombinedTaskList"
    assert setup.cluster.count("GET", TASK_LISTS, watch=False) == 1
    assert setup.cluster.count("GET", EVENT_LISTS, watch=False) == 1

    time.sleep(TTL + 0.2)
    setup.cluster.requests.clear()
    one = _admin(setup).get(f"{setup.server.url}{GV}/namespaces/cb-count-3/combinedtasks")
    assert len(one.json()["items"]) == 50
    assert setup.cluster.count("GET", TASK_LISTS, watch=False) == 1
    assert setup.cluster.count("GET", EVENT_LISTS, watch=False) == 1


def test_list_passes_paging_and_selectors_through_and_imposes_no_limit(setup: Setup) -> None:
    ns = "cb-paging"
    for t in range(7):
        setup.seed(ns, f"p{t}", priority=t % 2)
    url = f"{setup.server.url}{GV}/namespaces/{ns}/combinedtasks"
    session = _admin(setup)
    setup.cluster.requests.clear()
    selector = {"limit": "3", "fieldSelector": "spec.priority=0"}
    first = session.get(url, params=selector).json()
    rest = session.get(url, params={**selector, "continue": first["metadata"]["continue"]})
    names = [i["metadata"]["name"] for i in first["items"] + rest.json()["items"]]
    assert names == ["p0", "p2", "p4", "p6"]
    everything = session.get(url).json()
    assert len(everything["items"]) == 7
    queries = [r.query for r in setup.cluster.recorded() if r.path.endswith("/tasks")]
    assert queries[:2] == [selector, {**selector, "continue": first["metadata"]["continue"]}]
    assert "limit" not in queries[-1]


def test_a_burst_of_task_changes_on_a_watch_costs_one_events_list_per_ttl(
    setup: Setup,
) -> None:
    ns = "cb-burst"
    setup.seed(ns, "hot", events=2)
    url = f"{setup.server.url}{GV}/namespaces/{ns}/combinedtasks"
    task = setup.cluster.objects.get(TASKS, ns, "hot")
    assert task is not None
    params = {"watch": "true", "resourceVersion": task["metadata"]["resourceVersion"]}
    params["timeoutSeconds"] = "60"
    watch = _admin(setup).get(url, params=params, stream=True, timeout=60)
    time.sleep(0.5)  # the watch is open at the fake
    setup.cluster.requests.clear()
    started = time.monotonic()
    for priority in range(1000):
        task["spec"]["priority"] = priority % 11
        task = setup.cluster.objects.update(TASKS, ns, "hot", task)
    received = 0
    for line in watch.iter_lines():
        if line:
            event = orjson.loads(line)
            assert len(event["object"]["status"]["events"]) == 2
            received += 1
        if received == 1000:
            break
    elapsed = time.monotonic() - started
    watch.close()
    lists = setup.cluster.count("GET", EVENT_LISTS, watch=False)
    assert lists <= math.ceil(elapsed / TTL) + 1, (lists, elapsed)
    assert setup.cluster.count("GET", TASK_LISTS, watch=False) == 0


def test_an_expired_resource_version_upstream_is_an_error_event_410(setup: Setup) -> None:
    ns = "cb-expired"
    setup.seed(ns, "old")
    setup.cluster.objects.compact()
    url = f"{setup.server.url}{GV}/namespaces/{ns}/combinedtasks"
    params = {"watch": "true", "resourceVersion": "1", "timeoutSeconds": "10"}
    lines = setup.server.session().get(url, params=params, stream=True, timeout=30).iter_lines()
    event = orjson.loads(next(line for line in lines if line))
    assert (event["type"], event["object"]["code"], event["object"]["reason"]) == (
        "ERROR",
        410,
        "Expired",
    )


def test_a_watch_list_passes_through_to_the_task_watch(setup: Setup) -> None:
    """R6 WatchList: ``sendInitialEvents`` goes to the cluster's Task watch with the other
    options; its ADDED tasks come joined with their Events, then the initial-events-end
    BOOKMARK as a CombinedTask, then the changes."""
    ns = "cb-watchlist"
    setup.seed(ns, "first", events=1)
    setup.seed(ns, "second")
    url = f"{setup.server.url}{GV}/namespaces/{ns}/combinedtasks"
    params = {
        "watch": "1",
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "10",
    }
    response = _admin(setup).get(url, params=params, stream=True, timeout=30)
    events = (orjson.loads(line) for line in response.iter_lines() if line)
    initial = [next(events), next(events)]
    end = next(events)
    setup.seed(ns, "third")
    later = next(e for e in events if e["type"] != "BOOKMARK")
    response.close()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in initial] == [
        ("ADDED", "first"),
        ("ADDED", "second"),
    ]
    assert len(initial[0]["object"]["status"]["events"]) == 1
    assert end["type"] == "BOOKMARK" and end["object"]["kind"] == "CombinedTask"
    assert end["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert (later["type"], later["object"]["metadata"]["name"]) == ("ADDED", "third")
    revision = int(end["object"]["metadata"]["resourceVersion"])
    assert int(later["object"]["metadata"]["resourceVersion"]) > revision
    (watched,) = [r for r in setup.cluster.requests if r.path.endswith(f"/{ns}/tasks")]
    assert watched.query["sendInitialEvents"] == "true"
    assert watched.query["resourceVersionMatch"] == "NotOlderThan"


# access


def test_a_caller_who_may_not_list_events_is_refused(setup: Setup) -> None:
    ns = "cb-access"
    setup.seed(ns, "secret", events=1)

    def decide(spec: dict[str, Any]) -> tuple[bool, str]:
        attributes = spec.get("resourceAttributes") or {}
        allowed = attributes.get("resource") in ("combinedtasks", "tasks")
        return allowed, "" if allowed else "events are not for you"

    setup.cluster.decide = decide
    viewer = setup.server.session("viewer", groups=())
    refused = viewer.get(f"{setup.server.url}{GV}/namespaces/{ns}/combinedtasks")
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        'events is forbidden: User "viewer" cannot list resource "events" in API group "" '
        f'in the namespace "{ns}": events are not for you'
    )
    setup.cluster.decide = lambda spec: (True, "")
    allowed = setup.server.session("reader", groups=())
    assert allowed.get(f"{setup.server.url}{GV}/namespaces/{ns}/combinedtasks").status_code == 200


def test_with_the_cluster_down_combinedtasks_are_503_and_stored_kinds_keep_working(
    tmp_path: Path,
) -> None:
    cluster = FakeCluster().start()
    try:
        # one worker: ready means it has read the authentication ConfigMap before the fall
        with _server(tmp_path, cluster, workers=1) as server:
            cluster.stop()
            for version, binary in BINARIES.items():
                workdir = tmp_path / version
                workdir.mkdir()
                kubectl = Kubectl(version, binary, server.kubeconfig(), workdir, server)
                out = kubectl.fails("get", "combinedtasks", "-n", "default")
                assert (
                    "Error from server (ServiceUnavailable): the cluster could not be read: " in out
                )
                assert "GET /apis/example.example.com/v1/namespaces/default/tasks" in out
                name = f"still-{kubectl.tag}"
                manifest = {
                    "apiVersion": "search.task.example.example.com/v1",
                    "kind": "CustomTask",
                    "metadata": {"name": name},
                    "spec": {"priority": 1, "deadline": "2030-01-01T00:00:00Z"},
                }
                kubectl.ok("create", "-n", "default", "-f", kubectl.write(f"{name}.yaml", manifest))
                assert name in kubectl.ok("get", "customtasks", "-n", "default")
                assert "No resources found" in kubectl.run("get", "clustertasks").stderr
    finally:
        cluster.stop()


def test_shutdown_ends_a_combinedtasks_watch_cleanly_and_at_once(tmp_path: Path) -> None:
    with FakeCluster() as cluster, _server(tmp_path, cluster, workers=1) as server:
        Setup(server, cluster).seed("cb-stop", "a")
        url = f"{server.url}{GV}/namespaces/cb-stop/combinedtasks"
        params = {"watch": "true", "timeoutSeconds": "600"}
        lines = server.session().get(url, params=params, stream=True, timeout=30).iter_lines()
        assert orjson.loads(next(lines))["type"] == "ADDED"
        stopped = time.monotonic()
        server.process.terminate()
        assert list(lines) == []  # the final chunk came: no "Response ended prematurely"
        assert time.monotonic() - stopped < 5  # not gunicorn's graceful timeout


def test_in_dev_combinedtasks_read_the_cluster_of_kubeconfig_and_auth_stays_local(
    tmp_path: Path,
) -> None:
    with FakeCluster() as cluster:
        env = {"KUBECONFIG": str(cluster.kubeconfig(tmp_path))}
        with run_server(tmp_path, env=env, workers=1) as server:
            Setup(server, cluster).seed("cb-dev", "mine", events=2)
            listed = server.session().get(f"{server.url}{GV}/namespaces/cb-dev/combinedtasks")
            assert [len(i["status"]["events"]) for i in listed.json()["items"]] == [2]
            assert cluster.reviews() == []  # the dev CA and system:masters, no cluster reviews
            assert not any("configmaps" in r.path for r in cluster.recorded())
