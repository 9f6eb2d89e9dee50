"""The Task controller, the Procfile's ``controller`` process: finalizer, labels and Events.

It lists the cluster's Tasks, then watches them from the list's resourceVersion (resuming from
the last one seen, listing again after a 410), and for each Task:

- adds the finalizer ``example.example.com/finalizer`` and the labels
  ``example.example.com/priority``, ``example.example.com/deadline`` (unix seconds) and
  ``example.example.com/task-indexer`` (the key the search answers it by), as the tutorial's
  webhook does;
- records core Events labelled ``example.example.com/task-uid=<uid>``: ``TaskCreated`` the
  first time, ``TaskUpdated`` when the spec's generation moves on (both Normal), and
  ``TaskDeleted`` (Warning) once the task is being deleted, after which it removes its
  finalizer so the deletion completes.

Every Event carries the task generation it records, and the controller reads them back when it
starts: a restart, a resync or a change of labels records nothing twice.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from k8s import SERVICE_ACCOUNT, paths
from k8s.client import Cluster, ClusterError
from k8s.events import TASK_UID
from k8s.reflector import Reflector
from k8s.taskindex import INDEXER_LABEL, indexer_key

log = logging.getLogger("task-controller")

FINALIZER = "example.example.com/finalizer"
PRIORITY_LABEL = "example.example.com/priority"
DEADLINE_LABEL = "example.example.com/deadline"
GENERATION = "example.example.com/task-generation"  # annotation: the generation an Event records
COMPONENT = "task-controller"


@dataclass(slots=True)
class Recorded:
    """What the controller has recorded for one task."""

    generation: int = 0  # the latest generation an Event recorded (0: none yet)
    deleted: bool = False


class Controller:
    """Reconciles every Task of the cluster; ``run`` until ``stop`` is set."""

    def __init__(self, cluster: Cluster, stop: threading.Event | None = None) -> None:
        self._cluster = cluster
        self._stop = stop or threading.Event()
        self._recorded: dict[str, Recorded] = {}
        self._instance = socket.gethostname()

    def run(self) -> None:
        Reflector(
            self._cluster, paths.tasks(), replace=self._replace, apply=self._apply, stop=self._stop
        ).run()

    # the cluster's state

    def _remember(self) -> None:
        """Read back the Events recorded before: what is done is not done again."""
        listed = self._cluster.get(paths.events(), {"labelSelector": TASK_UID})
        self._recorded.clear()
        for event in listed.get("items") or []:
            metadata = event.get("metadata") or {}
            uid = (metadata.get("labels") or {}).get(TASK_UID)
            if not uid:
                continue
            recorded = self._recorded.setdefault(uid, Recorded())
            generation = int((metadata.get("annotations") or {}).get(GENERATION) or 0)
            recorded.generation = max(recorded.generation, generation)
            recorded.deleted = recorded.deleted or event.get("reason") == "TaskDeleted"

    def _replace(self, tasks: list[dict[str, Any]], revision: str) -> None:
        self._remember()
        for task in tasks:
            self._reconcile(task)

    def _apply(self, kind: str, task: dict[str, Any]) -> None:
        if kind == "DELETED":
            self._recorded.pop(_uid(task), None)
        else:
            self._reconcile(task)

    # one task

    def _reconcile(self, task: dict[str, Any]) -> None:
        try:
            if task["metadata"].get("deletionTimestamp"):
                self._finish(task)
            else:
                self._keep(task)
        except ClusterError as error:
            # A conflict means a newer version is on its way through the watch.
            log.info("task %s/%s: %s", _namespace(task), _name(task), error)

    def _keep(self, task: dict[str, Any]) -> None:
        metadata = task["metadata"]
        labels = dict(metadata.get("labels") or {})
        wanted = {**labels, **_labels(task)}
        finalizers = list(metadata.get("finalizers") or [])
        if FINALIZER not in finalizers:
            finalizers.append(FINALIZER)
        if wanted != labels or finalizers != metadata.get("finalizers"):
            self._patch(task, {"labels": wanted, "finalizers": finalizers})
        recorded = self._recorded.setdefault(_uid(task), Recorded())
        generation = int(metadata.get("generation") or 1)
        if recorded.generation == 0:
            self._record(task, "TaskCreated", "Task has been created", "Normal")
        elif generation > recorded.generation:
            self._record(task, "TaskUpdated", "Task has been updated", "Normal")
        recorded.generation = max(recorded.generation, generation)

    def _finish(self, task: dict[str, Any]) -> None:
        finalizers = list(task["metadata"].get("finalizers") or [])
        if FINALIZER not in finalizers:
            return
        recorded = self._recorded.setdefault(_uid(task), Recorded())
        if not recorded.deleted:
            self._record(task, "TaskDeleted", "Task has been deleted", "Warning")
            recorded.deleted = True
        finalizers.remove(FINALIZER)
        self._patch(task, {"finalizers": finalizers or None})

    def _patch(self, task: Mapping[str, Any], metadata: dict[str, Any]) -> None:
        """A merge patch of ``metadata``, on the version read only (409 otherwise)."""
        version = task["metadata"]["resourceVersion"]
        self._cluster.patch(
            paths.tasks(_namespace(task), _name(task)),
            {"metadata": {**metadata, "resourceVersion": version}},
        )

    def _record(self, task: Mapping[str, Any], reason: str, message: str, kind: str) -> None:
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        metadata = task["metadata"]
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                # kube's recorder names an Event after its object and the time
                "name": f"{_name(task)}.{time.time_ns():x}",
                "namespace": _namespace(task),
                "labels": {TASK_UID: _uid(task)},
                "annotations": {GENERATION: str(metadata.get("generation") or 1)},
            },
            "involvedObject": {
                "apiVersion": task.get("apiVersion", "example.example.com/v1"),
                "kind": task.get("kind", "Task"),
                "name": _name(task),
                "namespace": _namespace(task),
                "uid": _uid(task),
                "resourceVersion": metadata.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self._cluster.post(paths.events(_namespace(task)), event)
        log.info("task %s/%s: %s", _namespace(task), _name(task), reason)


def _labels(task: Mapping[str, Any]) -> dict[str, str]:
    """The labels the tutorial's webhook derives from the spec, and the key ``details``
    answers the task by in its plain-text answer (tutorial part 3)."""
    spec = task.get("spec") or {}
    metadata = task["metadata"]
    labels = {
        INDEXER_LABEL: indexer_key(
            _namespace(task), _name(task), int(metadata.get("generation") or 1)
        )
    }
    if spec.get("priority") is not None:
        labels[PRIORITY_LABEL] = str(spec["priority"])
    if spec.get("deadline"):
        deadline = datetime.fromisoformat(str(spec["deadline"]).replace("Z", "+00:00"))
        labels[DEADLINE_LABEL] = str(int(deadline.timestamp()))
    return labels


def _uid(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"].get("uid", ""))


def _name(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"].get("name", ""))


def _namespace(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"].get("namespace", ""))


def main() -> None:
    """Run against the cluster of ``APISERVER_KUBECONFIG``, ``KUBECONFIG`` or the pod's
    service account, until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cluster = Cluster.from_environment(
        os.environ.get("APISERVER_KUBECONFIG") or None,
        service_account=os.environ.get("APISERVER_SERVICE_ACCOUNT_DIR", SERVICE_ACCOUNT),
    )
    if cluster is None:
        raise SystemExit("no cluster: set KUBECONFIG or run in a pod")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    worker = threading.Thread(target=Controller(cluster, stop).run, daemon=True)
    worker.start()
    while worker.is_alive() and not stop.wait(1.0):
        pass


if __name__ == "__main__":
    main()
