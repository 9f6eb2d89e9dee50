"""``/metrics`` of the real server (gunicorn, two workers, TLS): kube's metric names and label
values after a known sequence of requests, summed over both workers' files; a worker that dies
leaves nothing counted twice; the scrape authorized as kube authorizes it (a non-resource
``get`` through SubjectAccessReview, ``system:masters`` without one)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector

from devtools.certs import new_ca
from tests.fakes.cluster import FakeCluster, authentication_data
from tests.fakes.objects import NAMESPACES
from tests.support.clusterapp import eventually
from tests.support.processes import Process, children
from tests.support.scraping import Series, delta, scrape, series
from tests.support.servers import Pki, Server, run_server

GROUP = "search.task.example.example.com"
GV = f"/apis/{GROUP}/v1"
TASKS = f"{GV}/namespaces/team/customtasks"
SPEC = {"priority": 1, "deadline": "2026-01-01T00:00:00Z"}
READ_FILES: Any = MultiProcessCollector.merge  # prometheus-client's reader of one worker's files
RESOURCE = {
    "group": GROUP,
    "version": "v1",
    "resource": "customtasks",
    "subresource": "",
    "component": "apiserver",
}


@dataclass
class Setup:
    server: Server
    cluster: FakeCluster
    metrics_dir: Path

    def fresh(self, name: str = "admin", groups: tuple[str, ...] = ("system:masters",)) -> Any:
        """A session whose every request opens a new connection: the two workers share them."""
        session = self.server.session(name, groups)
        session.headers["Connection"] = "close"
        return session

    def scrape(self) -> dict[Series, float]:
        return scrape(self.server.session(), self.server.url)

    def workers(self) -> set[Process]:
        master = Process.of(self.server.process.pid)
        assert master is not None
        return children(master)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("metrics")
    pki = Pki.create(directory / "pki")
    with FakeCluster() as cluster:
        cluster.configmap = authentication_data(pki.ca.cert_pem, new_ca("front-proxy").cert_pem)
        cluster.objects.put(NAMESPACES, {"metadata": {"name": "team"}})
        env = {
            "APISERVER_KUBECONFIG": str(cluster.kubeconfig(directory / "kubeconfig")),
            "APISERVER_AUTH_CACHE_SECONDS": "0.2",
            "APISERVER_METRICS_DIR": str(directory / "metrics"),
        }
        with run_server(directory, pki=pki, env=env, workers=2) as server:
            yield Setup(server, cluster, directory / "metrics")


def task(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": SPEC}


def labels(verb: str, scope: str, **extra: str) -> frozenset[tuple[str, str]]:
    return frozenset({**RESOURCE, "verb": verb, "scope": scope, **extra}.items())


def test_counts_after_a_known_sequence_are_kubes_summed_over_both_workers(setup: Setup) -> None:
    admin = setup.fresh()
    url = setup.server.url
    before = setup.scrape()
    for i in range(6):
        assert admin.post(f"{url}{TASKS}", json=task(f"t{i}")).status_code == 201
    assert admin.post(f"{url}{TASKS}", json=task("t0")).status_code == 409
    for i in range(4):
        assert admin.get(f"{url}{TASKS}/t{i}").status_code == 200
    assert admin.get(f"{url}{TASKS}/missing").status_code == 404
    for _ in range(2):
        assert admin.get(f"{url}{TASKS}").status_code == 200
    assert admin.get(f"{url}{GV}/customtasks").status_code == 200
    dry = admin.post(f"{url}{TASKS}?dryRun=All", json=task("dry"))
    assert dry.status_code == 201
    applied = admin.patch(
        f"{url}{TASKS}/applied?fieldManager=test",
        data=orjson.dumps({"apiVersion": f"{GROUP}/v1", "kind": "CustomTask", **task("applied")}),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert applied.status_code == 201, applied.text
    with admin.get(f"{url}{TASKS}?watch=true&timeoutSeconds=1", stream=True) as watch:
        events = [line for line in watch.iter_lines() if line]
    assert len(events) == 7  # the starting state: t0..t5 and "applied"
    refused = setup.fresh("mallory", ("devs",)).get(f"{url}{TASKS}")
    assert refused.status_code == 403  # kube counts no request authorization refused
    for _ in range(2):
        assert setup.server.anonymous().get(f"{url}/healthz").status_code == 200
    after = setup.scrape()

    health = frozenset(
        {
            "verb": "GET",
            "group": "",
            "version": "",
            "resource": "",
            "subresource": "/healthz",
            "scope": "",
            "component": "",
        }.items()
    )
    assert delta(before, after, "apiserver_request_total") == {
        labels("POST", "resource", dry_run="", code="201"): 6,
        labels("POST", "resource", dry_run="", code="409"): 1,
        labels("POST", "resource", dry_run="All", code="201"): 1,
        labels("GET", "resource", dry_run="", code="200"): 4,
        labels("GET", "resource", dry_run="", code="404"): 1,
        labels("LIST", "namespace", dry_run="", code="200"): 2,
        labels("LIST", "cluster", dry_run="", code="200"): 1,
        labels("APPLY", "resource", dry_run="", code="201"): 1,
        labels("WATCH", "namespace", dry_run="", code="200"): 1,
        health | {("dry_run", ""), ("code", "200")}: 2,
    }
    timed = delta(before, after, "apiserver_request_duration_seconds_count")
    assert timed[labels("POST", "resource", dry_run="")] == 7
    assert timed[labels("WATCH", "namespace", dry_run="")] == 1
    watched = delta(before, after, "apiserver_request_duration_seconds_sum")
    assert watched[labels("WATCH", "namespace", dry_run="")] >= 1.0  # its whole lifetime
    sized = delta(before, after, "apiserver_response_sizes_count")
    assert sized == {
        labels("GET", "resource"): 5,
        labels("LIST", "namespace"): 2,
        labels("LIST", "cluster"): 1,
        health: 2,
    }
    assert (
        after[series("apiserver_longrunning_requests", **RESOURCE, verb="WATCH", scope="namespace")]
        == 0
    )
    sent = delta(before, after, "apiserver_watch_events_total")
    assert sent == {
        frozenset({"group": GROUP, "version": "v1", "resource": "customtasks"}.items()): 7
    }

    per_worker: dict[str, float] = {}  # a worker's counters: the library's file and its own
    for path in setup.metrics_dir.glob("counter_*.db"):
        counted = sum(
            sample.value
            for metric in READ_FILES([str(path)])
            for sample in metric.samples
            if sample.name == "apiserver_request_total"
        )
        pid = path.stem.rsplit("_", 1)[1]
        per_worker[pid] = per_worker.get(pid, 0.0) + counted
    served = [pid for pid, n in per_worker.items() if n and pid != "archive"]
    assert len(served) == 2, per_worker  # both workers served some


def test_a_dead_workers_counts_stay_once_and_its_files_go(setup: Setup) -> None:
    admin = setup.fresh()
    for i in range(8):
        admin.get(f"{setup.server.url}{TASKS}/restart-{i}")
    before = setup.scrape()
    workers = setup.workers()
    for dead in sorted(workers, key=lambda p: p.pid):  # each in turn: the archive grows
        dead.send(signal.SIGKILL)
        eventually(
            lambda: len(setup.workers() - {dead}) == 2 and not dead.alive(),  # noqa: B023
            "a worker in its place",
            timeout=30,
        )
        eventually(
            lambda: not [n for n in os.listdir(setup.metrics_dir) if f"_{dead.pid}." in n],  # noqa: B023
            "its files gone",
        )
        after = setup.scrape()
        counted = {k: v for k, v in after.items() if k[0].startswith("apiserver_request")}
        assert counted == {k: v for k, v in before.items() if k[0].startswith("apiserver_request")}
        eventually(lambda: worker_pids(setup) == {p.pid for p in setup.workers()}, "its successor")
        assert dead.pid not in worker_pids(setup)
    assert {"counter_archive.db", "histogram_archive.db"} <= set(os.listdir(setup.metrics_dir))


def worker_pids(setup: Setup) -> set[int]:
    """The workers whose ``process_*`` a scrape shows."""
    found = {dict(k[1]).get("pid") for k in setup.scrape() if k[0] == "process_cpu_seconds_total"}
    return {int(pid) for pid in found if pid}


def test_a_scrape_is_a_non_resource_get_authorized_by_a_subject_access_review(
    setup: Setup,
) -> None:
    prometheus = setup.server.session("prometheus", ("monitoring",))
    setup.cluster.decide = lambda spec: (False, "")
    setup.cluster.requests.clear()
    refused = prometheus.get(f"{setup.server.url}/metrics")
    assert refused.status_code == 403
    assert refused.json()["message"] == 'forbidden: User "prometheus" cannot get path "/metrics"'
    [review] = setup.cluster.reviews()
    assert review["spec"]["nonResourceAttributes"] == {"path": "/metrics", "verb": "get"}
    assert review["spec"]["user"] == "prometheus"

    setup.cluster.decide = lambda spec: (spec["user"] == "prometheus", "")
    scraped: list[requests.Response] = []

    def allowed() -> bool:  # once the refusal's cached answer has expired
        scraped.append(prometheus.get(f"{setup.server.url}/metrics"))
        return scraped[-1].status_code == 200

    eventually(allowed, "allowed", timeout=10)
    assert "# TYPE apiserver_request_total counter" in scraped[-1].text
    assert (
        "# HELP apiserver_request_total [STABLE] Counter of apiserver requests" in scraped[-1].text
    )

    setup.cluster.requests.clear()
    assert setup.server.session().get(f"{setup.server.url}/metrics").status_code == 200
    assert setup.cluster.reviews() == []  # system:masters needs no review


def test_our_own_metrics_count_reviews_cluster_calls_and_admission(setup: Setup) -> None:
    setup.cluster.decide = lambda spec: (spec["user"] == "carol", "")
    carol = setup.server.session("carol", ("devs",))  # one connection: one worker's cache
    admin = setup.fresh()
    before = setup.scrape()
    for _ in range(3):
        assert carol.get(f"{setup.server.url}{TASKS}/nothing").status_code == 404
    for name in ("admitted-1", "admitted-2"):
        assert admin.post(f"{setup.server.url}{TASKS}", json=task(name)).status_code == 201
    ghost = f"{setup.server.url}{GV}/namespaces/ghost/customtasks"
    assert admin.post(ghost, json=task("refused")).status_code == 404  # NamespaceLifecycle
    after = setup.scrape()

    lookups = delta(before, after, "task_search_review_cache_lookups_total")
    by_result = {dict(k)["result"]: v for k, v in lookups.items()}
    assert {dict(k)["review"] for k in lookups} == {"SubjectAccessReview"}
    assert sum(by_result.values()) == 3 and by_result["miss"] >= 1
    posts = delta(before, after, "task_search_cluster_requests_total")
    reviews = sum(v for k, v in posts.items() if dict(k)["verb"] == "POST")
    assert reviews == by_result["miss"]  # each miss is one SubjectAccessReview sent
    timed = delta(before, after, "task_search_admission_duration_seconds_count")
    lifecycle = {"plugin": "NamespaceLifecycle", "operation": "CREATE", "type": "validate"}
    assert timed[frozenset({**lifecycle, "rejected": "false"}.items())] == 2
    assert timed[frozenset({**lifecycle, "rejected": "true"}.items())] == 1
    refused = delta(before, after, "task_search_admission_refusals_total")
    assert refused == {frozenset(lifecycle.items()): 1}


def test_no_metrics_when_they_are_off(tmp_path: Path) -> None:
    with run_server(tmp_path, workers=1, env={"APISERVER_METRICS": "false"}) as server:
        response = server.session().get(f"{server.url}/metrics", timeout=30)
    assert response.status_code == 404
