"""What the controller reads back from the Events recorded for a task, ours and another
recorder's, and the names its own Events get."""

from __future__ import annotations

from typing import Any

from k8s.events import TASK_UID
from k8s.recorder import NAME_LIMIT, event_name
from k8s.taskhistory import GENERATION, TaskHistory
from k8s.taskindex import INDEXER_LABEL


def task(generation: int, version: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "t",
            "namespace": "ns",
            "uid": "u1",
            "generation": generation,
            "resourceVersion": version,
            "labels": labels or {},
        }
    }


def event(reason: str, version: str = "1", generation: int | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"labels": {TASK_UID: "u1"}}
    if generation is not None:
        metadata["annotations"] = {GENERATION: str(generation)}
    return {"metadata": metadata, "reason": reason, "involvedObject": {"resourceVersion": version}}


def test_our_events_say_the_generation_they_record() -> None:
    history = TaskHistory()
    history.learn([event("TaskCreated", generation=1), event("TaskUpdated", generation=3)])
    assert history.of(task(3, "90")).generation == 3
    assert history.covers(task(3, "95")) and not history.covers(task(4, "99"))


def test_another_recorders_event_naming_the_current_version_covers_the_generation() -> None:
    history = TaskHistory()
    history.learn([event("TaskCreated", "10"), event("TaskUpdated", "20")])
    assert not history.covers(task(2, "20"))  # not settled before the task is seen
    recorded = history.of(task(2, "20"))
    assert (recorded.generation, recorded.foreign) == (2, None)


def test_another_recorders_older_event_covers_only_an_earlier_generation() -> None:
    history = TaskHistory()
    history.learn([event("TaskCreated", "10")])
    assert history.of(task(2, "30")).generation == 1  # the spec changed since: TaskUpdated due


def test_our_label_of_the_generation_covers_it_past_our_own_patch() -> None:
    history = TaskHistory()
    history.learn([event("TaskCreated", "10"), event("TaskUpdated", "20")])
    labelled = task(2, "21", {INDEXER_LABEL: "ns.t.2"})  # our label patch moved the version on
    assert history.of(labelled).generation == 2


def test_any_task_deleted_event_records_the_deletion_and_forget_drops_the_task() -> None:
    history = TaskHistory()
    history.learn([event("TaskDeleted", "40"), event("SomethingElse", "41")])
    recorded = history.of(task(3, "40"))
    assert recorded.deleted and recorded.generation == 0
    history.forget("ns", "t")
    assert history.of(task(3, "40")).deleted is False


def test_event_names_are_derived_from_the_change_they_record() -> None:
    created = event_name("t", "u1", "TaskCreated", 1)
    assert created == event_name("t", "u1", "TaskCreated", 7)  # one creation, whatever generation
    assert event_name("t", "u1", "TaskUpdated", 2) != event_name("t", "u1", "TaskUpdated", 3)
    assert event_name("t", "u2", "TaskCreated", 1) != created
    assert created.startswith("t.") and len(created) == len("t.") + 16
    long = event_name("x" * 253, "u1", "TaskDeleted", 1)
    assert len(long) == NAME_LIMIT and long.startswith("x" * 236 + ".")
