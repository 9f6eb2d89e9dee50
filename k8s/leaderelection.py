"""client-go's leader election, small: candidates take turns holding a ``coordination.k8s.io/v1``
Lease, so that one replica of the Task controller works at a time and another takes over
within about the lease's duration when it dies.

As client-go's ``LeaderElector`` with a ``LeaseLock`` and ``ReleaseOnCancel``:

- A write is a merge patch that names the ``resourceVersion`` read (kube answers 409 Conflict
  if the Lease changed since), so two candidates can never both win.
- Whether another holder's lease has expired is judged by this candidate's own clock: from
  when it last saw the lease change, plus the lease's ``leaseDurationSeconds``. The lease's
  ``renewTime`` is written for people to read, never compared: clocks differ between nodes.
- A leader that has not renewed for ``renew_deadline`` has lost: its work is ended and
  ``run`` returns False, for the caller to exit as controller-runtime does. A leader asked to
  stop ends its work first, then releases the lease, so the next leader never overlaps it.

No well-kept Python library offers this (kopf's peering is its own protocol), so it is here.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import Gauge

from k8s import paths
from k8s.client import Cluster, ClusterError
from k8s.kubetime import micro_time

log = logging.getLogger("k8s.leaderelection")

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 15.0, 10.0, 2.0  # controller-runtime's defaults
JITTER = 1.2
"""client-go's ``JitterFactor``: a try to acquire waits ``retry_period`` times 1 to 2.2."""
NOT_FOUND, CONFLICT = 404, 409

MASTER_STATUS = Gauge(
    "leader_election_master_status",
    "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, "
    "1 indicates master. 'name' is the string used to identify the lease. Please make sure to "
    "group by name.",
    ("name",),
)


@dataclass(frozen=True, slots=True)
class _Record:
    """A Lease's spec, as leader election reads and writes it."""

    holder: str = ""
    duration: int = 0
    acquired: str | None = None
    renewed: str | None = None
    transitions: int = 0

    @classmethod
    def of(cls, lease: dict[str, Any]) -> _Record:
        spec = lease.get("spec") or {}
        return cls(
            str(spec.get("holderIdentity") or ""),
            int(spec.get("leaseDurationSeconds") or 0),
            spec.get("acquireTime"),
            spec.get("renewTime"),
            int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration,
            "acquireTime": self.acquired,
            "renewTime": self.renewed,
            "leaseTransitions": self.transitions,
        }


class LeaderElector:
    """One candidate for the Lease ``namespace/name``, known as ``identity`` (unique per
    process, e.g. the pod's name plus a random suffix)."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry_period: float = RETRY_PERIOD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not identity:
            raise ValueError("a leader election identity is required")
        if int(lease_duration) < 1:
            raise ValueError("lease_duration must be at least 1 s (the Lease counts seconds)")
        if not lease_duration > renew_deadline > retry_period * JITTER > 0:
            raise ValueError("want lease_duration > renew_deadline > retry_period * 1.2 > 0")
        self._cluster = cluster
        self._collection = paths.leases(namespace)
        self._path = paths.leases(namespace, name)
        self._namespace, self._name, self._key = namespace, name, f"{namespace}/{name}"
        self._identity = identity
        self._lease_duration = lease_duration
        self._renew_deadline = renew_deadline
        self._retry_period = retry_period
        self._clock = clock
        self._observed = _Record()
        self._observed_at = clock()
        self._version = ""  # the Lease's resourceVersion last read or written
        self.leading = threading.Event()
        """Set exactly while this candidate holds the lease."""
        self._gauge = MASTER_STATUS.labels(name)
        self._gauge.set(0)

    @property
    def holder(self) -> str:
        """The holderIdentity last observed ("" when none)."""
        return self._observed.holder

    def run(self, stop: threading.Event, lead: Callable[[threading.Event], None]) -> bool:
        """Acquire the lease, then run ``lead(ended)`` in a thread while renewing it.

        Returns True once ``stop`` is set (after ``lead`` has returned and the lease is
        released), False when leadership was lost (after ``lead`` has returned). ``ended`` is
        set as leadership ends; ``lead`` should then return soon, as ``run`` waits for it. If
        ``lead`` returns earlier the lease is still held, as in client-go, until ``stop``.
        The thread is a daemon: ``run`` joins it, but an interrupted caller's exit won't.
        """
        started = self._acquire(stop)
        if started is None:
            return True
        self._gauge.set(1)  # before the event: whoever sees us leading sees the gauge at 1
        self.leading.set()
        log.info("%s: %s acquired the lease and leads", self._key, self._identity)
        ended = threading.Event()
        worker = threading.Thread(
            target=self._lead, args=(lead, ended), name=f"leader {self._key}", daemon=True
        )
        worker.start()
        held = self._renew(stop, started)
        self.leading.clear()
        self._gauge.set(0)
        ended.set()
        worker.join()
        if not held:
            log.warning(
                "%s: leader election lost: not renewed for %s s", self._key, self._renew_deadline
            )
            return False
        self._release()
        return True

    def _lead(self, lead: Callable[[threading.Event], None], ended: threading.Event) -> None:
        try:
            lead(ended)
        except Exception:
            log.exception("%s: the leader's work failed", self._key)

    def _acquire(self, stop: threading.Event) -> float | None:
        """Try until the lease is ours: the local time the winning try started, or None if
        ``stop`` came first."""
        while not stop.is_set():
            started = self._clock()
            if self._try(started + self._renew_deadline):
                return started
            stop.wait(self._retry_period * (1 + random.random() * JITTER))
        return None

    def _renew(self, stop: threading.Event, renewed: float) -> bool:
        """Renew every retry period until ``stop`` (True) or until no try that started in the
        last ``renew_deadline`` succeeded (False). Counting from a try's start, not its answer,
        errs towards stepping down before others may take over."""
        while not stop.wait(self._retry_period):
            started = self._clock()
            deadline = renewed + self._renew_deadline
            if started < deadline and self._try(deadline):
                renewed = started
            elif self._clock() >= deadline:
                return False
        return True

    def _try(self, deadline: float) -> bool:
        """client-go's ``tryAcquireOrRenew``: True when the lease is ours now. Every call
        answers by ``deadline`` (local clock) or fails."""
        renewed = micro_time()
        if self._mine() and self._valid():
            # The fast path: renew on the resourceVersion of our last write.
            try:
                self._update(
                    replace(self._observed, renewed=renewed, duration=self._duration()), deadline
                )
                return True
            except ClusterError as error:
                log.info("%s: renewing optimistically failed (%s): reading", self._key, error)
        try:
            lease = self._cluster.get(self._path, timeout=self._timeout(deadline))
        except ClusterError as error:
            if error.status == NOT_FOUND:
                return self._create(renewed, deadline)
            log.warning("%s: reading the lease failed: %s", self._key, error)
            return False
        self._version = str((lease.get("metadata") or {}).get("resourceVersion") or "")
        current = _Record.of(lease)
        if current != self._observed:
            self._observe(current)
        if current.holder and self._valid() and not self._mine():
            return False
        renewed = micro_time()  # after the read: a lease taken over was released before it
        if self._mine():
            record = replace(current, duration=self._duration(), renewed=renewed)
        else:
            record = _Record(
                self._identity, self._duration(), renewed, renewed, current.transitions + 1
            )
        try:
            self._update(record, deadline)
        except ClusterError as error:
            log.warning("%s: writing the lease failed: %s", self._key, error)
            return False
        return True

    def _create(self, now: str, deadline: float) -> bool:
        record = _Record(self._identity, self._duration(), now, now, 0)
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self._name, "namespace": self._namespace},
            "spec": record.spec(),
        }
        try:
            created = self._cluster.post(self._collection, body, timeout=self._timeout(deadline))
        except ClusterError as error:
            if error.status != CONFLICT:  # 409 AlreadyExists: another candidate won
                log.warning("%s: creating the lease failed: %s", self._key, error)
            return False
        self._version = str(created["metadata"]["resourceVersion"])
        self._observe(record)
        return True

    def _update(self, record: _Record, deadline: float) -> None:
        """Write ``record`` if the Lease is still at the resourceVersion last seen (else 409)."""
        patch = {"metadata": {"resourceVersion": self._version}, "spec": record.spec()}
        updated = self._cluster.patch(self._path, patch, timeout=self._timeout(deadline))
        self._version = str(updated["metadata"]["resourceVersion"])
        self._observe(record)

    def _release(self) -> None:
        """client-go's ``ReleaseOnCancel``: hand the lease back so the next leader need not
        wait for it to expire."""
        if not self._mine():
            return
        now = micro_time()
        record = _Record("", 1, now, now, self._observed.transitions)
        try:
            self._update(record, self._clock() + self._renew_deadline)
        except ClusterError as error:
            log.warning("%s: releasing the lease failed: %s", self._key, error)
            return
        log.info("%s: %s released the lease", self._key, self._identity)

    def _observe(self, record: _Record) -> None:
        if record.holder != self._observed.holder:
            log.info("%s: the leader is now %s", self._key, record.holder or "nobody")
        self._observed, self._observed_at = record, self._clock()

    def _mine(self) -> bool:
        return self._observed.holder == self._identity

    def _valid(self) -> bool:
        """Whether the lease last observed is still held, by this candidate's clock."""
        return self._observed_at + self._observed.duration > self._clock()

    def _duration(self) -> int:
        return int(self._lease_duration)

    def _timeout(self, deadline: float) -> float:
        """Seconds a call may take to answer by ``deadline``; none left is a failure."""
        left = deadline - self._clock()
        if left <= 0:
            raise ClusterError(f"{self._key}: the renew deadline passed")
        return left
