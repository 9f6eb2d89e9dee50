"""The Task controller in tests: leading alone in a thread against the fake cluster, and what
the fake then holds (a task's Event reasons in order, a task as it is now)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from k8s.client import Cluster
from k8s.controller import Controller
from k8s.events import TASK_UID
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import EVENTS, TASKS


class Running:
    """A controller leading alone in a thread, stopped at the end."""

    def __init__(
        self, fake: FakeCluster, directory: Path, workers: int = 4, resync: float = 3600.0
    ) -> None:
        cluster = Cluster.from_environment(str(fake.kubeconfig(directory)))
        assert cluster is not None
        self.stop = threading.Event()
        self.controller = Controller(
            cluster, self.stop, workers=workers, instance="test-pod", resync=resync
        )
        self.thread = threading.Thread(target=self.controller.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def end(self) -> None:
        self.stop.set()


def every_reason(fake: FakeCluster) -> dict[str, list[str]]:
    """The reasons of the Events of each task uid, oldest first."""
    events = sorted(fake.objects.all(EVENTS), key=lambda e: int(e["metadata"]["resourceVersion"]))
    found: dict[str, list[str]] = {}
    for event in events:
        uid = event["metadata"].get("labels", {}).get(TASK_UID)
        if uid:
            found.setdefault(uid, []).append(event["reason"])
    return found


def reasons(fake: FakeCluster, uid: str) -> list[str]:
    return every_reason(fake).get(uid, [])


def eventually(
    condition: Callable[[], bool], what: str, timeout: float = 10.0, every: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(every)


def new_task(fake: FakeCluster, name: str = "task-sample") -> dict[str, Any]:
    return fake.objects.put(
        TASKS,
        {
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"priority": 3, "deadline": "2025-08-19T09:17:55Z", "details": "d"},
        },
    )


def current(fake: FakeCluster, name: str = "task-sample") -> dict[str, Any] | None:
    return fake.objects.get(TASKS, "default", name)


def settled(fake: FakeCluster, uid: str, expected: list[str]) -> None:
    """The Events of the task are ``expected`` and stay so for a moment (no storm)."""
    eventually(lambda: reasons(fake, uid) == expected, f"recorded {expected}")
    time.sleep(0.3)
    assert reasons(fake, uid) == expected
