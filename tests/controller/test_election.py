"""Two controller processes (the Procfile's command) against one cluster: only the leader
records, each change once; a leader killed with SIGKILL is replaced within the lease's
duration and nothing is lost or doubled; a leader stopped with SIGTERM releases the lease.
Their probes and metrics, read over HTTP as the kubelet and Prometheus read them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8s.client import Cluster
from k8s.controller import Controller, Options, readiness
from k8s.probes import Probes
from k8s.reconciler import FINALIZER
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import LEASES, TASKS
from tests.support.controller import current, eventually, every_reason, new_task
from tests.support.servers import ROOT, free_port

LEASE, DEADLINE, RETRY = 3.0, 2.0, 0.5
LEASE_NAME = "task-controller"


class ControllerProcess:
    """``python -m k8s.controller`` with short lease timings and its probe port."""

    def __init__(self, fake: FakeCluster, directory: Path, name: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "APISERVER_KUBECONFIG": str(fake.kubeconfig(directory)),
            "APISERVER_CONTROLLER_PROBE_ADDRESS": f"127.0.0.1:{self.port}",
            "APISERVER_CONTROLLER_LEASE_NAMESPACE": "default",
            "APISERVER_CONTROLLER_LEASE_DURATION": str(LEASE),
            "APISERVER_CONTROLLER_RENEW_DEADLINE": str(DEADLINE),
            "APISERVER_CONTROLLER_RETRY_PERIOD": str(RETRY),
        }
        self.log = directory / f"{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "k8s.controller"], cwd=ROOT, env=env, stderr=out
            )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def metric(self, sample: str) -> float | None:
        for line in self.get("/metrics")[1].splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def leading(self) -> bool:
        return self.metric(f'leader_election_master_status{{name="{LEASE_NAME}"}}') == 1.0

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def pair(fake: FakeCluster, tmp_path: Path) -> Iterator[tuple[ControllerProcess, ...]]:
    started = (ControllerProcess(fake, tmp_path, "a"), ControllerProcess(fake, tmp_path, "b"))
    yield started
    for process in started:
        process.end()


def test_one_leader_records_each_change_once_and_a_killed_one_is_replaced(
    fake: FakeCluster, pair: tuple[ControllerProcess, ...]
) -> None:
    eventually(lambda: all(p.get("/readyz")[0] == 200 for p in pair), "both ready", 20)
    eventually(lambda: sum(p.leading() for p in pair) == 1, "one leader", 10)
    leader, standby = sorted(pair, key=lambda p: not p.leading())
    assert standby.get("/readyz?verbose")[1] == (
        "[+]ping ok\n[+]informer-sync ok\n[+]leader-election ok\nreadyz check passed\n"
    )
    assert standby.get("/healthz") == (200, "ok")

    uids = {f"t-{n}": new_task(fake, f"t-{n}")["metadata"]["uid"] for n in range(20)}
    expected = {uid: ["TaskCreated"] for uid in uids.values()}
    eventually(lambda: every_reason(fake) == expected, "each task recorded once")
    assert leader.metric('controller_runtime_reconcile_total{controller="task",result="success"}')
    assert (
        standby.metric('controller_runtime_reconcile_total{controller="task",result="success"}')
        is None
    )
    assert leader.metric('workqueue_adds_total{controller="task",name="task"}')
    assert leader.metric('workqueue_depth{controller="task",name="task",priority="-100"}') == 0

    leader.process.kill()  # SIGKILL: no release, the lease must expire
    killed = time.monotonic()
    for n in range(20, 30):
        uids[f"t-{n}"] = new_task(fake, f"t-{n}")["metadata"]["uid"]
        expected[uids[f"t-{n}"]] = ["TaskCreated"]
    for n in range(5):
        task = current(fake, f"t-{n}")
        assert task is not None
        task["spec"]["taskState"] = "Finished"
        fake.objects.update(TASKS, "default", f"t-{n}", task)
        expected[uids[f"t-{n}"]].append("TaskUpdated")
    for n in range(5, 10):
        fake.objects.delete(TASKS, "default", f"t-{n}")
        expected[uids[f"t-{n}"]].append("TaskDeleted")

    eventually(standby.leading, "the standby leading", LEASE + 10 * RETRY, every=0.05)
    took = time.monotonic() - killed
    # expiry is counted from when the standby saw the last renewal (a poll, up to 2.2 retry
    # periods after it), plus the poll that finds it expired; one poll more of slack for a
    # loaded host
    assert took <= LEASE + 3 * 2.2 * RETRY, f"took over after {took:.1f} s"
    eventually(lambda: every_reason(fake) == expected, "every change recorded once", 15)
    time.sleep(0.5)
    assert every_reason(fake) == expected
    for n in range(5, 10):
        assert current(fake, f"t-{n}") is None
    for n in range(10, 30):
        assert FINALIZER in (current(fake, f"t-{n}") or {})["metadata"]["finalizers"]

    standby.process.send_signal(signal.SIGTERM)
    assert standby.process.wait(10) == 0
    lease = fake.objects.get(LEASES, "default", LEASE_NAME)
    assert lease is not None
    assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseDurationSeconds"]) == ("", 1)


def test_readyz_fails_until_the_tasks_are_listed(fake: FakeCluster, tmp_path: Path) -> None:
    cluster = Cluster.from_environment(str(fake.kubeconfig(tmp_path)))
    assert cluster is not None
    fake.fail["tasks"] = 503
    stop = threading.Event()
    controller = Controller(cluster, stop).start()
    probes = Probes("127.0.0.1", 0, readiness(controller, None)).start()
    url = f"http://127.0.0.1:{probes.port}"
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/readyz", timeout=5)
        assert refused.value.code == 500
        assert refused.value.read().decode() == (
            "[+]ping ok\n[-]informer-sync failed: reason withheld\n[+]leader-election ok\n"
            "readyz check failed\n"
        )
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as live:
            assert (live.status, live.read()) == (200, b"ok")
        del fake.fail["tasks"]
        eventually(controller.informer.synced.is_set, "listed", 10)
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as ready:
            assert (ready.status, ready.read()) == (200, b"ok")
    finally:
        stop.set()
        probes.stop()


def test_options_default_to_controller_runtimes_and_the_pods_namespace(tmp_path: Path) -> None:
    (tmp_path / "namespace").write_text("task-search\n")
    options = Options.from_environment({}, str(tmp_path))
    assert (options.lease_duration, options.renew_deadline, options.retry_period) == (15, 10, 2)
    assert (options.workers, options.leader_elect) == (4, True)
    assert options.resync == 10 * 3600  # controller-runtime's SyncPeriod
    assert (options.lease_namespace, options.lease_name) == ("task-search", "task-controller")
    assert (options.probe_host, options.probe_port) == ("", 8081)
    assert Options.from_environment({}, str(tmp_path / "absent")).lease_namespace == "default"
    chosen = Options.from_environment(
        {
            "APISERVER_CONTROLLER_WORKERS": "8",
            "APISERVER_CONTROLLER_LEADER_ELECT": "false",
            "APISERVER_CONTROLLER_LEASE_NAMESPACE": "other",
            "APISERVER_CONTROLLER_PROBE_ADDRESS": "127.0.0.1:9000",
        },
        str(tmp_path),
    )
    assert (chosen.workers, chosen.leader_elect, chosen.lease_namespace) == (8, False, "other")
    assert (chosen.probe_host, chosen.probe_port) == ("127.0.0.1", 9000)


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("WORKERS", "four", "not a number"),
        ("LEASE_DURATION", "-1", "negative"),
        ("PROBE_ADDRESS", "127.0.0.1", "no port"),
    ],
)
def test_a_bad_setting_is_named(name: str, value: str, why: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"APISERVER_CONTROLLER_{name}='{value}': {why}"):
        Options.from_environment({f"APISERVER_CONTROLLER_{name}": value}, str(tmp_path))
