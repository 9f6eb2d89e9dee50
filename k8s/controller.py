"""The Task controller, the Procfile's ``controller`` process, built as the ecosystem builds
controllers (controller-runtime, kopf): an informer, a work queue, workers, leader election.

- An :class:`k8s.informer.Informer` keeps every Task in memory (listing, watching, listing
  again after a 410) and queues the key of each one that changes.
- A :class:`k8s.workqueue.WorkQueue` hands each key to one worker at a time, collapses repeated
  changes, and serves live changes before the initial list's backlog; a failed reconcile
  (5xx, timeout, 409...) comes back after client-go's backoff, a task gone ends its key.
- ``workers`` threads reconcile (:class:`k8s.reconciler.TaskReconciler`) from the informer's
  copy of the task, the latest there is, never from the watch event that queued it.
- Only the leader reconciles (:class:`k8s.leaderelection.LeaderElector`, a Lease); the others
  keep their informer warm and take over when the lease is released or expires. Before its
  first reconcile a leader reads back every Event recorded for tasks, whoever recorded them.
- ``/healthz``, ``/readyz`` and ``/metrics`` on a small port (:class:`k8s.probes.Probes`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k8s import SERVICE_ACCOUNT, paths
from k8s.client import Cluster, ClusterError
from k8s.controllermetrics import (
    ACTIVE_WORKERS,
    MAX_CONCURRENT,
    RECONCILE_ERRORS,
    RECONCILE_TIME,
    RECONCILES,
)
from k8s.events import TASK_UID
from k8s.health import Check
from k8s.informer import Informer, Key
from k8s.leaderelection import LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD, LeaderElector
from k8s.probes import Probes
from k8s.reconciler import TaskReconciler
from k8s.recorder import EventRecorder
from k8s.taskhistory import TaskHistory
from k8s.workqueue import BACKLOG, LIVE, WorkQueue

log = logging.getLogger("task-controller")

NAME = "task"
"""The controller's name in metrics, as controller-runtime names a controller for its kind."""
NOT_FOUND = 404
PAGE_SIZE = 500
RETRY_SECONDS = 2.0
RESYNC_SECONDS = 10 * 3600.0
"""How often every task is queued again (behind live changes): controller-runtime's
``SyncPeriod``, a safety net for a change a watch may have missed."""


class Controller:
    """Reconciles every Task of the cluster with ``workers`` threads while :meth:`lead` runs."""

    def __init__(
        self,
        cluster: Cluster,
        stop: threading.Event,
        *,
        workers: int = 4,
        instance: str = "",
        resync: float = RESYNC_SECONDS,
    ) -> None:
        self._cluster = cluster
        self._workers = workers
        self._resync = resync
        self._history = TaskHistory()
        recorder = EventRecorder(cluster, instance or socket.gethostname())
        self._reconciler = TaskReconciler(cluster, self._history, recorder)
        self._queue: WorkQueue[Key] | None = None
        self.informer = Informer(
            cluster, paths.tasks(), stop, on_list=self._listed, on_change=self._changed
        )
        MAX_CONCURRENT.labels(NAME).set(workers)

    def start(self) -> Controller:
        """Follow the cluster's Tasks (leader or not, so that a new leader starts warm)."""
        self.informer.start()
        return self

    def lead(self, ended: threading.Event) -> None:
        """Reconcile until ``ended`` is set: once the informer has listed every task and the
        Events recorded for them are read back, every task is queued behind live changes, and
        again every ``resync`` seconds."""
        while not self.informer.synced.wait(0.1):
            if ended.is_set():
                return
        if not self._learn(ended):
            return
        queue: WorkQueue[Key] = WorkQueue(name=NAME)
        self._queue = queue
        self._listed(self.informer.every_key())
        threads = [
            threading.Thread(target=self._work, args=(queue,), name=f"worker {n}", daemon=True)
            for n in range(self._workers)
        ]
        for thread in threads:
            thread.start()
        log.info("reconciling with %d workers", self._workers)
        while not ended.wait(self._resync):
            self._listed(self.informer.every_key())
        self._queue = None
        queue.shutdown()
        for thread in threads:
            thread.join()

    def run(self, stop: threading.Event) -> None:
        """Lead alone, without an election, until ``stop``."""
        self.start().lead(stop)

    # the informer's handlers

    def _listed(self, keys: Iterable[Key]) -> None:
        queue = self._queue
        if queue is not None:
            for key in keys:
                queue.add(key, BACKLOG)

    def _changed(self, key: Key) -> None:
        queue = self._queue
        if queue is None:
            return
        task = self.informer.get(*key)
        if task is None or not self._reconciler.settled(task):
            queue.add(key, LIVE)

    # the work

    def _learn(self, ended: threading.Event) -> bool:
        """Read back every Event recorded for a task (retrying until it works or ``ended``)."""
        while not ended.is_set():
            try:
                self._history.learn(self._events())
                return True
            except ClusterError as error:
                log.warning("the recorded Events cannot be read: %s", error)
                ended.wait(RETRY_SECONDS)
        return False

    def _events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        params = {"labelSelector": TASK_UID, "limit": str(PAGE_SIZE)}
        while True:
            listed = self._cluster.get(paths.events(), params)
            events.extend(listed.get("items") or [])
            token = (listed.get("metadata") or {}).get("continue")
            if not token:
                return events
            params = {**params, "continue": token}

    def _work(self, queue: WorkQueue[Key]) -> None:
        active, took = ACTIVE_WORKERS.labels(NAME), RECONCILE_TIME.labels(NAME)
        results = {result: RECONCILES.labels(NAME, result) for result in ("success", "error")}
        while (key := queue.get()) is not None:
            active.inc()
            started = time.perf_counter()
            try:
                result = self._process(queue, key)
            finally:
                queue.done(key)
                active.dec()
            took.observe(time.perf_counter() - started)
            results[result].inc()

    def _process(self, queue: WorkQueue[Key], key: Key) -> str:
        """Reconcile the task at ``key`` as the informer has it now: "success" or "error"."""
        task = self.informer.get(*key)
        try:
            if task is not None:
                self._reconciler.reconcile(task)
        except ClusterError as error:
            if error.status != NOT_FOUND:
                return self._failed(queue, key, error)
            task = None  # deleted meanwhile: the watch brings the news
        except Exception as error:  # a bug must not kill the worker: retried, and logged
            log.exception("task %s/%s: reconcile failed", *key)
            return self._failed(queue, key, error)
        if task is None:
            self._history.forget(*key)
        queue.forget(key)
        return "success"

    def _failed(self, queue: WorkQueue[Key], key: Key, error: Exception) -> str:
        queue.add_rate_limited(key)
        RECONCILE_ERRORS.labels(NAME).inc()
        log.info("task %s/%s: %s (retry %d)", *key, error, queue.retries(key))
        return "error"


@dataclass(frozen=True)
class Options:
    """The controller's settings (the README's table, ``APISERVER_CONTROLLER_*``)."""

    workers: int = 4
    resync: float = RESYNC_SECONDS
    leader_elect: bool = True
    lease_namespace: str = "default"
    lease_name: str = "task-controller"
    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD
    probe_host: str = ""
    probe_port: int = 8081

    @classmethod
    def from_environment(cls, env: Mapping[str, str], service_account: str) -> Options:
        """The settings in ``env``; ValueError names the first one that is not a number."""

        def get(name: str) -> str:
            return env.get(f"APISERVER_CONTROLLER_{name}", "")

        def number(name: str, default: float) -> float:
            text = get(name)
            try:
                value = float(text) if text else default
            except ValueError:
                raise ValueError(f"APISERVER_CONTROLLER_{name}={text!r}: not a number") from None
            if value < 0:
                raise ValueError(f"APISERVER_CONTROLLER_{name}={text!r}: negative")
            return value

        namespace_file = Path(service_account) / "namespace"
        pod_namespace = namespace_file.read_text().strip() if namespace_file.is_file() else ""
        host, _, port = (get("PROBE_ADDRESS") or ":8081").rpartition(":")
        if not port.isdigit():
            raise ValueError(
                f"APISERVER_CONTROLLER_PROBE_ADDRESS={get('PROBE_ADDRESS')!r}: no port"
            )
        return cls(
            workers=max(1, int(number("WORKERS", cls.workers))),
            resync=number("RESYNC_SECONDS", cls.resync),
            leader_elect=(get("LEADER_ELECT") or "true").lower() != "false",
            lease_namespace=get("LEASE_NAMESPACE") or pod_namespace or cls.lease_namespace,
            lease_name=get("LEASE_NAME") or cls.lease_name,
            lease_duration=number("LEASE_DURATION", cls.lease_duration),
            renew_deadline=number("RENEW_DEADLINE", cls.renew_deadline),
            retry_period=number("RETRY_PERIOD", cls.retry_period),
            probe_host=host,
            probe_port=int(port),
        )


def main() -> None:
    """Run against the cluster of ``APISERVER_KUBECONFIG``, ``KUBECONFIG`` or the pod's
    service account until SIGTERM or SIGINT (exit 0, the lease released), or until the lease
    is lost (exit 1, as controller-runtime: the pod restarts and stands by)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    service_account = os.environ.get("APISERVER_SERVICE_ACCOUNT_DIR", SERVICE_ACCOUNT)
    try:
        options = Options.from_environment(os.environ, service_account)
    except ValueError as error:
        raise SystemExit(f"task-controller: {error}") from None
    cluster = Cluster.from_environment(
        os.environ.get("APISERVER_KUBECONFIG") or None, service_account=service_account
    )
    if cluster is None:
        raise SystemExit("no cluster: set KUBECONFIG or run in a pod")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    host = socket.gethostname()
    controller = Controller(
        cluster, stop, workers=options.workers, instance=host, resync=options.resync
    ).start()
    if not options.leader_elect:
        probes = Probes(options.probe_host, options.probe_port, readiness(controller, None)).start()
        controller.lead(stop)
        probes.stop()
        return
    elector = LeaderElector(
        cluster,
        options.lease_namespace,
        options.lease_name,
        f"{host}_{uuid.uuid4()}",  # controller-runtime's identity: unique per process
        lease_duration=options.lease_duration,
        renew_deadline=options.renew_deadline,
        retry_period=options.retry_period,
    )
    probes = Probes(options.probe_host, options.probe_port, readiness(controller, elector)).start()
    kept = elector.run(stop, controller.lead)
    probes.stop()
    if not kept:
        raise SystemExit("leader election lost")


def readiness(controller: Controller, elector: LeaderElector | None) -> dict[str, Check]:
    """Ready once the informer has listed every task, and the lease has been read (leader or
    standby alike: a standby is ready to take over)."""

    def synced() -> str:
        return "" if controller.informer.synced.is_set() else "the Tasks are not listed yet"

    def elected() -> str:
        if elector is None or elector.leading.is_set() or elector.holder:
            return ""
        return "the lease has not been read yet"

    return {"informer-sync": synced, "leader-election": elected}


if __name__ == "__main__":
    main()
