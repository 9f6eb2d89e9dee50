"""What the Task controller does for one Task, the tutorial's controller and webhook fixed:

- records core Events labelled ``example.example.com/task-uid=<uid>``: ``TaskCreated`` the
  first time, ``TaskUpdated`` when the spec's generation moves on (both Normal), and
  ``TaskDeleted`` (Warning) once the task is being deleted, after which it removes its
  finalizer so that the deletion completes; each change once (:mod:`k8s.taskhistory`);
- adds the finalizer ``example.example.com/finalizer`` and the labels
  ``example.example.com/priority``, ``example.example.com/deadline`` (unix seconds) and
  ``example.example.com/task-indexer`` (the key the search answers it by, ending in the
  generation), as the tutorial's webhook does.

The Event comes before the labels: a task labelled with its generation has that generation
recorded, which is what a restart reads back. Each write is made on the resourceVersion the
task was read at (409 when it moved on), so a stale copy never overwrites a newer one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from k8s import paths
from k8s.client import Cluster
from k8s.recorder import EventRecorder
from k8s.taskhistory import CREATED, DELETED, UPDATED, TaskHistory
from k8s.taskindex import INDEXER_LABEL, indexer_key

FINALIZER = "example.example.com/finalizer"
PRIORITY_LABEL = "example.example.com/priority"
DEADLINE_LABEL = "example.example.com/deadline"


class TaskReconciler:
    """Brings one Task to what it should be; a failed cluster call raises ClusterError."""

    def __init__(self, cluster: Cluster, history: TaskHistory, recorder: EventRecorder) -> None:
        self._cluster = cluster
        self._history = history
        self._recorder = recorder

    def reconcile(self, task: Mapping[str, Any]) -> None:
        if task["metadata"].get("deletionTimestamp"):
            self._finish(task)
        else:
            self._keep(task)

    def settled(self, task: Mapping[str, Any]) -> bool:
        """Nothing to do for ``task`` as it is: its generation recorded, its finalizer and
        labels in place, not being deleted. A predicate for watched changes (the echo of our
        own patch, a status change), as controller-runtime's predicates filter events."""
        metadata = task["metadata"]
        if metadata.get("deletionTimestamp") or not self._history.covers(task):
            return False
        labels = metadata.get("labels") or {}
        finalized = FINALIZER in (metadata.get("finalizers") or ())
        return finalized and all(labels.get(k) == v for k, v in _labels(task).items())

    def _keep(self, task: Mapping[str, Any]) -> None:
        metadata = task["metadata"]
        recorded = self._history.of(task)
        generation = int(metadata.get("generation") or 1)
        if recorded.generation == 0:
            self._recorder.record(task, CREATED, "Task has been created", "Normal", "Create")
        elif generation > recorded.generation:
            self._recorder.record(task, UPDATED, "Task has been updated", "Normal", "Update")
        recorded.generation = max(recorded.generation, generation)
        labels = dict(metadata.get("labels") or {})
        wanted = {**labels, **_labels(task)}
        finalizers = list(metadata.get("finalizers") or [])
        if FINALIZER not in finalizers:
            finalizers.append(FINALIZER)
        if wanted != labels or finalizers != metadata.get("finalizers"):
            self._patch(task, {"labels": wanted, "finalizers": finalizers})

    def _finish(self, task: Mapping[str, Any]) -> None:
        finalizers = list(task["metadata"].get("finalizers") or [])
        if FINALIZER not in finalizers:
            return
        recorded = self._history.of(task)
        if not recorded.deleted:
            self._recorder.record(task, DELETED, "Task has been deleted", "Warning", "Delete")
            recorded.deleted = True
        finalizers.remove(FINALIZER)
        self._patch(task, {"finalizers": finalizers or None})

    def _patch(self, task: Mapping[str, Any], metadata: dict[str, Any]) -> None:
        """A merge patch of ``metadata``, on the version read only (409 otherwise)."""
        meta = task["metadata"]
        self._cluster.patch(
            paths.tasks(meta["namespace"], meta["name"]),
            {"metadata": {**metadata, "resourceVersion": meta["resourceVersion"]}},
        )


def _labels(task: Mapping[str, Any]) -> dict[str, str]:
    """The labels the tutorial's webhook derives from the spec, and the key ``details``
    answers the task by in its plain-text answer (tutorial part 3)."""
    spec = task.get("spec") or {}
    metadata = task["metadata"]
    generation = int(metadata.get("generation") or 1)
    labels = {INDEXER_LABEL: indexer_key(metadata["namespace"], metadata["name"], generation)}
    if spec.get("priority") is not None:
        labels[PRIORITY_LABEL] = str(spec["priority"])
    if spec.get("deadline"):
        try:
            deadline = datetime.fromisoformat(str(spec["deadline"]).replace("Z", "+00:00"))
        except ValueError:  # the CRD's schema admits only date-times; a label cannot say more
            return labels
        labels[DEADLINE_LABEL] = str(int(deadline.timestamp()))
    return labels
