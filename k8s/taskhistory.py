"""What has been recorded for each Task, read back from the cluster's Events: the controller
records each change once, across restarts, relists, leaders and other recorders.

Every Event labelled ``example.example.com/task-uid`` counts, whoever recorded it:

- ours carry the generation they record (the annotation ``example.example.com/task-generation``);
- another recorder's (the tutorial's Go controller records the same reasons, with no
  annotation) are read by reason and by the task's resourceVersion they name: a
  ``TaskCreated`` or ``TaskUpdated`` naming the resourceVersion the task still has, or a later
  one, recorded the task as it is now; an older one recorded some earlier generation, so a
  task whose spec changed since gets its ``TaskUpdated``. That comparison needs the task as
  first seen, so it is settled then (:meth:`TaskHistory.of`);
- any ``TaskDeleted`` means the deletion is recorded.

The controller labels a task with the generation it handled (``example.example.com/
task-indexer`` ends in it) only once that generation's Event is recorded, by us or by another.
Our own label patch moves the task's resourceVersion past another recorder's Events, so after
a restart the label is what says their generation was covered.

Only the worker that holds a task's key changes its entry (the informer's thread reads it, in
``covers``); the lock guards the maps for ``learn`` and for the workers of other keys.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from k8s.events import TASK_UID
from k8s.taskindex import INDEXER_LABEL, indexer_key

GENERATION = "example.example.com/task-generation"
"""The annotation of our Events: the task generation an Event records."""
CREATED, UPDATED, DELETED = "TaskCreated", "TaskUpdated", "TaskDeleted"


@dataclass(slots=True)
class Recorded:
    """What has been recorded for one task."""

    generation: int = 0
    """The latest generation an Event is known to record (0: none, not even TaskCreated)."""
    deleted: bool = False
    foreign: str | None = None
    """The latest resourceVersion another recorder's TaskCreated/TaskUpdated names, until the
    task is first seen (None: none, or settled)."""


class TaskHistory:
    """Recorded entries by task uid, and which uid each task key (namespace/name) has now."""

    def __init__(self) -> None:
        self._by_uid: dict[str, Recorded] = {}
        self._uids: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def learn(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Merge what ``events`` record into what is known (never forgetting anything)."""
        with self._lock:
            for event in events:
                metadata = event.get("metadata") or {}
                uid = (metadata.get("labels") or {}).get(TASK_UID)
                if uid:
                    _merge(self._by_uid.setdefault(uid, Recorded()), event)

    def of(self, task: Mapping[str, Any]) -> Recorded:
        """The entry of ``task`` (the caller holds its key), another recorder's Events
        settled against the task as first seen."""
        metadata = task["metadata"]
        uid = str(metadata.get("uid", ""))
        key = (str(metadata.get("namespace", "")), str(metadata.get("name", "")))
        with self._lock:
            self._uids[key] = uid
            recorded = self._by_uid.setdefault(uid, Recorded())
        if recorded.foreign is not None:
            generation = int(metadata.get("generation") or 1)
            current = _at_least(recorded.foreign, str(metadata.get("resourceVersion", "")))
            labelled = (metadata.get("labels") or {}).get(INDEXER_LABEL) == indexer_key(
                *key, generation
            )
            recorded.generation = max(recorded.generation, generation if current or labelled else 1)
            recorded.foreign = None
        return recorded

    def covers(self, task: Mapping[str, Any]) -> bool:
        """The task's generation is recorded, another recorder's Events settled already."""
        metadata = task["metadata"]
        recorded = self._by_uid.get(str(metadata.get("uid", "")))
        generation = int(metadata.get("generation") or 1)
        return (
            recorded is not None and recorded.foreign is None and recorded.generation >= generation
        )

    def forget(self, namespace: str, name: str) -> None:
        """The task at this key is gone: drop its entry."""
        with self._lock:
            uid = self._uids.pop((namespace, name), None)
            if uid is not None:
                self._by_uid.pop(uid, None)


def _merge(recorded: Recorded, event: Mapping[str, Any]) -> None:
    reason = event.get("reason")
    if reason == DELETED:
        recorded.deleted = True
        return
    if reason not in (CREATED, UPDATED):
        return
    annotations = (event.get("metadata") or {}).get("annotations") or {}
    generation = annotations.get(GENERATION)
    if generation is not None and str(generation).isdigit():
        recorded.generation = max(recorded.generation, int(generation))
        return
    version = str((event.get("involvedObject") or {}).get("resourceVersion") or "")
    if recorded.foreign is None or _at_least(version, recorded.foreign):
        recorded.foreign = version


def _at_least(version: str, other: str) -> bool:
    """``version`` is ``other`` or later. kube's resourceVersions are etcd revisions, decimal
    integers in practice; any other pair compares equal only when identical."""
    if version.isdigit() and other.isdigit():
        return int(version) >= int(other)
    return version == other
