"""The Task controller against the fake cluster: one labelled Event per real change, its
finalizer and labels, resumption after a cut watch and a restart, and the Procfile process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client import REGISTRY

from k8s.reconciler import DEADLINE_LABEL, FINALIZER, PRIORITY_LABEL
from k8s.recorder import event_name
from k8s.taskindex import INDEXER_LABEL
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import CONFIGMAPS, EVENTS, TASKS
from tests.support.controller import Running, current, eventually, new_task, reasons, settled
from tests.support.servers import ROOT


def test_create_update_and_delete_are_each_recorded_once(
    fake: FakeCluster, controller: Running
) -> None:
    uid = new_task(fake)["metadata"]["uid"]
    eventually(
        lambda: FINALIZER in (current(fake) or {})["metadata"].get("finalizers", []), "finalized"
    )
    task = current(fake)
    assert task is not None
    assert task["metadata"]["labels"] == {
        PRIORITY_LABEL: "3",
        DEADLINE_LABEL: "1755595075",
        INDEXER_LABEL: "default.task-sample.1",  # the tutorial's key, as details answers it
    }
    settled(fake, uid, ["TaskCreated"])

    task["metadata"]["labels"]["team"] = "a"  # metadata only: no new generation, no Event
    task = fake.objects.update(TASKS, "default", "task-sample", task)
    task["spec"]["taskState"] = "Finished"
    fake.objects.update(TASKS, "default", "task-sample", task)
    settled(fake, uid, ["TaskCreated", "TaskUpdated"])
    eventually(
        lambda: (
            (current(fake) or {})["metadata"]["labels"][INDEXER_LABEL] == "default.task-sample.2"
        ),
        "labelled with the new generation's key",
    )

    fake.objects.delete(TASKS, "default", "task-sample")
    eventually(lambda: current(fake) is None, "deleted once the finalizer is removed")
    settled(fake, uid, ["TaskCreated", "TaskUpdated", "TaskDeleted"])


def test_events_are_complete_core_events(fake: FakeCluster, controller: Running) -> None:
    task = new_task(fake)
    uid = task["metadata"]["uid"]
    eventually(lambda: reasons(fake, uid) == ["TaskCreated"], "recorded")
    (event,) = fake.objects.all(EVENTS)
    assert event["involvedObject"] == {
        "apiVersion": "example.example.com/v1",
        "kind": "Task",
        "name": "task-sample",
        "namespace": "default",
        "uid": uid,
        "resourceVersion": event["involvedObject"]["resourceVersion"],
    }
    assert (event["type"], event["message"], event["count"]) == (
        "Normal",
        "Task has been created",
        1,
    )
    assert event["source"] == {"component": "task-controller"}
    # client-go's events recorder: who reported it, as which instance, doing what, when
    assert (event["reportingComponent"], event["reportingInstance"]) == (
        "task-controller",
        "test-pod",
    )
    assert event["action"] == "Create"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["eventTime"])
    assert event["firstTimestamp"] == event["lastTimestamp"] == event["eventTime"][:19] + "Z"
    # named after the change it records: a second create of it is refused
    assert event["metadata"]["name"] == event_name("task-sample", uid, "TaskCreated", 1)


def test_a_restart_and_a_cut_watch_record_nothing_twice(fake: FakeCluster, tmp_path: Path) -> None:
    first = Running(fake, tmp_path)
    uid = new_task(fake)["metadata"]["uid"]
    settled(fake, uid, ["TaskCreated"])
    fake.objects.cut_watches()  # the controller resumes from its last resourceVersion
    other = new_task(fake, "second")["metadata"]["uid"]
    settled(fake, other, ["TaskCreated"])
    first.end()
    first.thread.join(5)
    task = current(fake)
    assert task is not None
    task["spec"]["priority"] = 8  # changed while no controller ran
    fake.objects.update(TASKS, "default", "task-sample", task)

    second = Running(fake, tmp_path)
    try:
        settled(fake, uid, ["TaskCreated", "TaskUpdated"])
        settled(fake, other, ["TaskCreated"])
        eventually(
            lambda: (current(fake) or {})["metadata"]["labels"][PRIORITY_LABEL] == "8",
            "relabelled",
        )
    finally:
        second.end()


def test_a_failed_write_is_retried_and_recorded_once(
    fake: FakeCluster, controller: Running
) -> None:
    """A 500 on the first patch, a 500 on the first Event, and an Event created whose answer
    was lost (the retry meets kube's 409 AlreadyExists): each retried, each change once."""
    fake.fail_next("PATCH", "tasks", 500)
    uid = new_task(fake)["metadata"]["uid"]
    eventually(
        lambda: FINALIZER in (current(fake) or {})["metadata"].get("finalizers", []), "finalized"
    )
    settled(fake, uid, ["TaskCreated"])
    patches = [r for r in fake.recorded() if r.method == "PATCH" and "/tasks/" in r.path]
    assert len(patches) == 2  # the failed one, then its retry

    fake.fail_next("POST", "events", 500)
    fake.fail_next("POST", "events", 504, applied=True)
    task = current(fake)
    assert task is not None
    task["spec"]["taskState"] = "Finished"
    fake.objects.update(TASKS, "default", "task-sample", task)
    settled(fake, uid, ["TaskCreated", "TaskUpdated"])
    posts = [r for r in fake.recorded() if r.method == "POST" and r.path.endswith("/events")]
    assert len(posts) == 4  # TaskCreated; TaskUpdated: failed, created but unanswered, 409
    eventually(
        lambda: (
            (current(fake) or {})["metadata"]["labels"][INDEXER_LABEL] == "default.task-sample.2"
        ),
        "labelled once the Event is recorded",
    )


def test_a_relist_after_410_records_nothing_twice(fake: FakeCluster, controller: Running) -> None:
    uids = [new_task(fake, f"task-{n}")["metadata"]["uid"] for n in range(5)]
    for uid in uids:
        settled(fake, uid, ["TaskCreated"])
    lists = fake.count("GET", r"/apis/example.example.com/v1/tasks", watch=False)
    with fake.objects.changed:  # no bookmark in between: the controller's version is older
        fake.objects.put(CONFIGMAPS, {"metadata": {"name": "other", "namespace": "default"}})
        fake.objects.compact()  # the controller's resourceVersion is gone: its watch gets 410
        fake.objects.cut_watches()
    eventually(
        lambda: fake.count("GET", r"/apis/example.example.com/v1/tasks", watch=False) > lists,
        "listed again",
    )
    task = current(fake, "task-0")
    assert task is not None
    task["spec"]["priority"] = 9
    fake.objects.update(TASKS, "default", "task-0", task)
    settled(fake, uids[0], ["TaskCreated", "TaskUpdated"])
    for uid in uids[1:]:
        settled(fake, uid, ["TaskCreated"])


def test_the_procfile_controller_process_runs_and_stops_on_sigterm(
    fake: FakeCluster, tmp_path: Path
) -> None:
    procfile = (ROOT / "Procfile").read_text()
    line = next(line for line in procfile.splitlines() if line.startswith("controller:"))
    command = line.partition(":")[2].strip()
    env = {
        **os.environ,
        "APISERVER_KUBECONFIG": str(fake.kubeconfig(tmp_path)),
        "APISERVER_CONTROLLER_PROBE_ADDRESS": "127.0.0.1:0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    with subprocess.Popen(["sh", "-c", f"exec {command}"], cwd=ROOT, env=env) as process:
        try:
            uid = new_task(fake)["metadata"]["uid"]
            settled(fake, uid, ["TaskCreated"])
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(10) == 0


def test_the_echo_of_its_own_patch_is_not_reconciled_but_a_label_removed_is_put_back(
    fake: FakeCluster, controller: Running
) -> None:
    before = reconciles()
    uid = new_task(fake)["metadata"]["uid"]
    settled(fake, uid, ["TaskCreated"])
    eventually(lambda: INDEXER_LABEL in labels_now(fake), "labelled")
    time.sleep(0.5)  # the watch has brought the patched task back by now
    assert reconciles() - before == 1  # the creation; its own patch left nothing to do

    task = current(fake)
    assert task is not None
    del task["metadata"]["labels"][PRIORITY_LABEL]  # someone removes a label it keeps
    fake.objects.update(TASKS, "default", "task-sample", task)
    eventually(lambda: labels_now(fake).get(PRIORITY_LABEL) == "3", "the label put back")
    settled(fake, uid, ["TaskCreated"])


def test_a_resync_queues_every_task_again_and_records_nothing_twice(
    fake: FakeCluster, tmp_path: Path
) -> None:
    uid = new_task(fake)["metadata"]["uid"]
    running = Running(fake, tmp_path, resync=0.2)
    try:
        settled(fake, uid, ["TaskCreated"])
        before = reconciles()
        eventually(lambda: reconciles() >= before + 3, "reconciled again by three resyncs")
        assert reasons(fake, uid) == ["TaskCreated"]
    finally:
        running.end()


def reconciles() -> float:
    sample = REGISTRY.get_sample_value(
        "controller_runtime_reconcile_total", {"controller": "task", "result": "success"}
    )
    return sample or 0.0


def labels_now(fake: FakeCluster) -> dict[str, str]:
    labels: dict[str, str] = ((current(fake) or {}).get("metadata") or {}).get("labels") or {}
    return labels
