"""The controller on a cluster that already holds 1,000 Tasks: those another recorder (the
tutorial's Go controller) has recorded get nothing twice, even across a restart; and a task
created, updated and deleted while the others are still queued is handled at once."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from k8s.controller import NAME
from k8s.events import TASK_UID
from k8s.reconciler import FINALIZER, PRIORITY_LABEL
from k8s.taskindex import INDEXER_LABEL, indexer_key
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import EVENTS, TASKS
from tests.support.controller import Running, current, eventually, every_reason, new_task, settled

TASKS_BEFORE = 1000


def go_event(fake: FakeCluster, task: dict[str, Any], reason: str) -> None:
    """An Event as the tutorial's Go controller records one: a random name, the task's
    resourceVersion, the uid label, no annotation, no source, no timestamps."""
    meta = task["metadata"]
    fake.objects.put(
        EVENTS,
        {
            "metadata": {
                "name": "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(40)),
                "namespace": meta["namespace"],
                "labels": {TASK_UID: meta["uid"]},
            },
            "involvedObject": {
                "apiVersion": "example.example.com/v1",
                "kind": "Task",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
            },
            "reason": reason,
            "message": f"Task has been {reason[4:].lower()}",
            "type": "Normal",
        },
    )


def go_task(fake: FakeCluster, name: str) -> dict[str, Any]:
    """A task as the tutorial's webhook left it: its finalizer and labels, not the indexer's."""
    return fake.objects.put(
        TASKS,
        {
            "metadata": {
                "name": name,
                "namespace": "default",
                "finalizers": [FINALIZER],
                "labels": {PRIORITY_LABEL: "3"},
            },
            "spec": {"priority": 3, "details": "d"},
        },
    )


def changed(fake: FakeCluster, name: str, **spec: Any) -> dict[str, Any]:
    task = current(fake, name)
    assert task is not None
    task["spec"].update(spec)
    return fake.objects.update(TASKS, "default", name, task)


def reconciled() -> float:
    sample = REGISTRY.get_sample_value(
        "controller_runtime_reconcile_total", {"controller": NAME, "result": "success"}
    )
    return sample or 0.0


def test_tasks_another_recorder_recorded_get_nothing_twice(
    fake: FakeCluster, tmp_path: Path
) -> None:
    expected: dict[str, list[str]] = {}
    for n in range(TASKS_BEFORE):
        task = go_task(fake, f"task-{n:04}")
        go_event(fake, task, "TaskCreated")
        expected[task["metadata"]["uid"]] = ["TaskCreated"]
        if n % 10 == 1:  # updated while the Go controller ran: it recorded that generation
            go_event(fake, changed(fake, task["metadata"]["name"], priority=5), "TaskUpdated")
            expected[task["metadata"]["uid"]].append("TaskUpdated")
        if n % 20 == 2:  # a label changed: the Go controller recorded TaskUpdated again
            labelled = current(fake, task["metadata"]["name"])
            assert labelled is not None
            labelled["metadata"]["labels"]["team"] = "a"
            name = labelled["metadata"]["name"]
            go_event(fake, fake.objects.update(TASKS, "default", name, labelled), "TaskUpdated")
            expected[task["metadata"]["uid"]].append("TaskUpdated")
    missed = {}
    for n in range(3, TASKS_BEFORE, 100):  # the spec changed after the Go controller stopped
        task = changed(fake, f"task-{n:04}", details="changed since")
        missed[task["metadata"]["uid"]] = [*expected[task["metadata"]["uid"]], "TaskUpdated"]
    events_before = len(fake.objects.all(EVENTS))

    first = Running(fake, tmp_path)
    try:

        def all_labelled() -> bool:
            return all(
                t["metadata"].get("labels", {}).get(INDEXER_LABEL)
                == indexer_key("default", t["metadata"]["name"], t["metadata"]["generation"])
                for t in fake.objects.all(TASKS)
            )

        eventually(all_labelled, "every task labelled", timeout=60, every=0.5)
        for uid, reasons_now in missed.items():
            settled(fake, uid, reasons_now)
        assert len(fake.objects.all(EVENTS)) == events_before + len(missed)
        assert every_reason(fake) == {**expected, **missed}
    finally:
        first.end()
        first.thread.join(10)

    done = reconciled()
    second = Running(fake, tmp_path)  # a restart: every task reconciled again, nothing recorded
    try:
        eventually(lambda: reconciled() >= done + TASKS_BEFORE, "every task reconciled", 60, 0.2)
        assert len(fake.objects.all(EVENTS)) == events_before + len(missed)
    finally:
        second.end()


def test_a_task_changed_behind_a_backlog_is_handled_first(
    fake: FakeCluster, tmp_path: Path
) -> None:
    for n in range(TASKS_BEFORE):
        new_task(fake, f"backlog-{n:04}")
    fake.slow["events"] = 0.01  # one worker, at least 10 s of backlog
    running = Running(fake, tmp_path, workers=1)

    def finalized(name: str) -> bool:
        return FINALIZER in (
            (current(fake, name) or {"metadata": {}})["metadata"].get("finalizers") or []
        )

    def waiting() -> int:
        return sum(
            1
            for t in fake.objects.all(TASKS)
            if FINALIZER not in t["metadata"].get("finalizers", [])
        )

    try:
        eventually(lambda: waiting() < TASKS_BEFORE - 5, "the backlog started", every=0.1)
        uid = new_task(fake, "live")["metadata"]["uid"]
        eventually(lambda: finalized("live"), "the new task finalized", timeout=5)
        settled(fake, uid, ["TaskCreated"])
        changed(fake, "live", taskState="Finished")
        settled(fake, uid, ["TaskCreated", "TaskUpdated"])
        fake.objects.delete(TASKS, "default", "live")
        eventually(lambda: current(fake, "live") is None, "deleted once finalized", timeout=5)
        settled(fake, uid, ["TaskCreated", "TaskUpdated", "TaskDeleted"])
        left = waiting()
        assert left > 0, "the backlog drained before the live task was done: nothing proven"
    finally:
        running.end()
