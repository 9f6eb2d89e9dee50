"""The Task controller's Events, recorded as client-go's recorders write core/v1 Events.

Each Event is one change of one task (its creation, a generation, its deletion), so there is
no series to aggregate. Its name is derived from what it records (the task's name and a hash
of its uid, reason and generation) rather than from the time as kube's recorder names them: a
retried create, or another leader recording the same change, answers 409 AlreadyExists
instead of writing a second Event.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from k8s import paths
from k8s.client import Cluster, ClusterError
from k8s.events import TASK_UID
from k8s.kubetime import micro_time, seconds_time
from k8s.taskhistory import GENERATION, UPDATED

log = logging.getLogger("task-controller")

COMPONENT = "task-controller"
NAME_LIMIT = 253
"""Characters of an Event's name (a DNS subdomain)."""
INSTANCE_LIMIT = 128
"""Characters of ``reportingInstance``, kube's ReportingInstanceLengthLimit."""
CONFLICT = 409


class EventRecorder:
    """Records Events about Tasks as ``instance`` of the ``task-controller`` component."""

    def __init__(self, cluster: Cluster, instance: str) -> None:
        self._cluster = cluster
        self._instance = instance[:INSTANCE_LIMIT]

    def record(
        self, task: Mapping[str, Any], reason: str, message: str, kind: str, action: str
    ) -> None:
        """Create the Event of ``reason`` for the task as it is; one already there is done."""
        metadata = task["metadata"]
        namespace, name = str(metadata["namespace"]), str(metadata["name"])
        uid, generation = str(metadata["uid"]), int(metadata.get("generation") or 1)
        now = datetime.now(UTC)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": event_name(name, uid, reason, generation),
                "namespace": namespace,
                "labels": {TASK_UID: uid},
                "annotations": {GENERATION: str(generation)},
            },
            "involvedObject": {
                "apiVersion": task.get("apiVersion", f"{paths.TASK_GROUP}/{paths.TASK_VERSION}"),
                "kind": task.get("kind", "Task"),
                "name": name,
                "namespace": namespace,
                "uid": uid,
                "resourceVersion": str(metadata.get("resourceVersion", "")),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "action": action,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
            "eventTime": micro_time(now),
            "firstTimestamp": seconds_time(now),
            "lastTimestamp": seconds_time(now),
            "count": 1,
        }
        try:
            self._cluster.post(paths.events(namespace), event)
        except ClusterError as error:
            if error.status != CONFLICT:
                raise
            log.debug("task %s/%s: %s was recorded already", namespace, name, reason)
            return
        log.debug("task %s/%s: %s", namespace, name, reason)


def event_name(task: str, uid: str, reason: str, generation: int) -> str:
    """``<task>.<16 hex digits>``, the shape of kube's recorder's names, the digits a hash of
    the change: the generation counts for TaskUpdated only (one creation, one deletion)."""
    change = f"{uid}/{reason}/{generation if reason == UPDATED else ''}"
    digest = hashlib.blake2b(change.encode(), digest_size=8).hexdigest()
    return f"{task[: NAME_LIMIT - len(digest) - 1]}.{digest}"
