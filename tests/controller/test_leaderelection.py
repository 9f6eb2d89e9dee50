"""Leader election against the fake cluster: the Lease as client-go writes it, a standby that
waits while the leader renews, release on stop after the leader's work has ended, takeover of
a dead holder's lease by the local clock, loss when renewal fails, one leader among racing
candidates, and the ``leader_election_master_status`` gauge."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from k8s.client import Cluster
from k8s.kubetime import micro_time
from k8s.leaderelection import (
    LEASE_DURATION,
    RENEW_DEADLINE,
    RETRY_PERIOD,
    LeaderElector,
)
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import LEASES

NAMESPACE = "default"
LEASE, DEADLINE, RETRY = 1.0, 0.6, 0.1
MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
COLLECTION = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    with FakeCluster() as running:
        yield running


@pytest.fixture
def name() -> str:
    """A lease name of this test's own, so the gauge's samples are too."""
    return f"lease-{uuid.uuid4().hex[:8]}"


class Candidate:
    """A LeaderElector running in a thread; its ``lead`` notes when it was ended and returned."""

    def __init__(
        self,
        fake: FakeCluster,
        directory: Path,
        name: str,
        identity: str,
        *,
        lease: float = LEASE,
        deadline: float = DEADLINE,
        retry: float = RETRY,
        on_end: Callable[[], None] = lambda: None,
    ) -> None:
        cluster = Cluster.from_environment(str(fake.kubeconfig(directory)))
        assert cluster is not None
        self.identity = identity
        self.elector = LeaderElector(
            cluster,
            NAMESPACE,
            name,
            identity,
            lease_duration=lease,
            renew_deadline=deadline,
            retry_period=retry,
        )
        self.stop = threading.Event()
        self.ended: threading.Event | None = None
        self.returned = threading.Event()
        self.result: bool | None = None
        self.finished_at = 0.0
        self._on_end = on_end
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Candidate:
        self.thread.start()
        return self

    def end(self) -> bool | None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return self.result

    def _run(self) -> None:
        self.result = self.elector.run(self.stop, self._lead)
        self.finished_at = time.monotonic()

    def _lead(self, ended: threading.Event) -> None:
        self.ended = ended
        ended.wait()
        self._on_end()
        self.returned.set()


@pytest.fixture
def candidates(fake: FakeCluster, tmp_path: Path) -> Iterator[Callable[..., Candidate]]:
    """Makes candidates (not started); stops them all at the end of the test."""
    made: list[Candidate] = []

    def make(name: str, identity: str, **options: Any) -> Candidate:
        made.append(Candidate(fake, tmp_path, name, identity, **options))
        return made[-1]

    yield make
    for candidate in made:
        candidate.stop.set()
    for candidate in made:
        candidate.thread.join(10)


def eventually(condition: Callable[[], bool], what: str, timeout: float = 3.0) -> float:
    """Wait for ``condition``; the monotonic time it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(0.01)
    return time.monotonic()


def spec(fake: FakeCluster, name: str) -> dict[str, Any]:
    lease = fake.objects.get(LEASES, NAMESPACE, name)
    assert lease is not None
    return dict(lease["spec"])


def lease_changes(fake: FakeCluster, name: str) -> list[tuple[int, str, dict[str, Any]]]:
    """Every write of the Lease ``name``: (resourceVersion, ADDED or MODIFIED, its spec)."""
    with fake.objects.changed:
        history = list(fake.objects.history)
    return [
        (change.revision, change.type, dict(change.obj["spec"]))
        for change in history
        if change.plural == "leases" and change.obj["metadata"]["name"] == name
    ]


def master_status(name: str) -> float | None:
    return REGISTRY.get_sample_value("leader_election_master_status", {"name": name})


def test_controller_runtime_defaults() -> None:
    assert (LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD) == (15.0, 10.0, 2.0)


def test_durations_are_checked(fake: FakeCluster, tmp_path: Path) -> None:
    cluster = Cluster.from_environment(str(fake.kubeconfig(tmp_path)))
    assert cluster is not None
    for lease, deadline, retry in ((1.0, 1.0, 0.1), (2.0, 1.0, 0.9), (0.5, 0.4, 0.1)):
        with pytest.raises(ValueError):
            LeaderElector(
                cluster,
                NAMESPACE,
                "x",
                "a",
                lease_duration=lease,
                renew_deadline=deadline,
                retry_period=retry,
            )
    with pytest.raises(ValueError):
        LeaderElector(cluster, NAMESPACE, "x", "")


def test_micro_time_is_utc_with_microseconds() -> None:
    at = datetime(2006, 1, 2, 15, 4, 5, 7, tzinfo=timezone(timedelta(hours=2)))
    assert micro_time(at) == "2006-01-02T13:04:05.000007Z"


def test_first_candidate_creates_the_lease_and_the_second_stands_by(
    fake: FakeCluster, candidates: Callable[..., Candidate], name: str
) -> None:
    first = candidates(name, "a").start()
    eventually(first.elector.leading.is_set, "leading")
    assert fake.count("POST", COLLECTION) == 1
    (_, kind, created), *_ = lease_changes(fake, name)
    assert kind == "ADDED"
    assert created["holderIdentity"] == "a"
    assert created["leaseDurationSeconds"] == 1
    assert created["leaseTransitions"] == 0
    assert MICRO_TIME.fullmatch(created["acquireTime"])
    assert created["renewTime"] == created["acquireTime"]
    assert first.elector.holder == "a"

    second = candidates(name, "b").start()
    watched_until = time.monotonic() + 2 * LEASE  # past any expiry, were it not renewed
    while time.monotonic() < watched_until:
        assert not second.elector.leading.is_set()
        assert first.elector.leading.is_set()
        time.sleep(0.02)
    assert second.elector.holder == "a"
    now = spec(fake, name)
    assert now["holderIdentity"] == "a"
    assert MICRO_TIME.fullmatch(now["renewTime"])
    assert now["renewTime"] > created["renewTime"]
    assert (now["acquireTime"], now["leaseTransitions"]) == (created["acquireTime"], 0)
    assert len(lease_changes(fake, name)) >= 2 * LEASE / RETRY / 2  # renewed every retry period


def test_stop_ends_the_work_then_releases_and_the_standby_takes_over(
    fake: FakeCluster, candidates: Callable[..., Candidate], name: str
) -> None:
    at_return: list[tuple[int, str]] = []

    def note_lease() -> None:
        time.sleep(0.2)  # slow to finish: the lease must wait for it
        at_return.append((fake.objects.revision, spec(fake, name)["holderIdentity"]))

    # A long lease: without the release, the standby would wait about 2 s.
    durations = {"lease": 2.0, "deadline": 1.2, "retry": RETRY}
    leader = candidates(name, "a", on_end=note_lease, **durations).start()
    eventually(leader.elector.leading.is_set, "leading")
    standby = candidates(name, "b", **durations).start()
    eventually(lambda: standby.elector.holder == "a", "standby observing")
    held = spec(fake, name)

    assert leader.end() is True
    assert leader.ended is not None and leader.ended.is_set()
    assert leader.returned.is_set()
    assert not leader.elector.leading.is_set()
    ((returned_at, holder_then),) = at_return
    assert holder_then == "a"  # the work ended while the lease was still held
    released = [
        (revision, lease)
        for revision, _, lease in lease_changes(fake, name)
        if lease["holderIdentity"] == ""
    ]
    ((revision, lease),) = released
    assert revision > returned_at
    assert lease["leaseDurationSeconds"] == 1
    assert lease["leaseTransitions"] == held["leaseTransitions"] == 0
    assert MICRO_TIME.fullmatch(lease["acquireTime"])
    assert lease["renewTime"] == lease["acquireTime"] > held["renewTime"]

    took_over = eventually(standby.elector.leading.is_set, "the standby leading")
    assert took_over - leader.finished_at < 0.6  # about one retry period (with jitter), not 2 s
    now = spec(fake, name)
    assert now["holderIdentity"] == "b"
    assert now["leaseTransitions"] == 1
    assert now["leaseDurationSeconds"] == 2
    assert now["acquireTime"] > lease["acquireTime"]


def test_a_dead_holders_lease_is_taken_over_after_its_duration_by_the_local_clock(
    fake: FakeCluster, candidates: Callable[..., Candidate], name: str
) -> None:
    long_ago = "2020-01-01T00:00:00.000000Z"  # by renewTime, it expired long ago
    fake.objects.put(
        LEASES,
        {
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "holderIdentity": "dead",
                "leaseDurationSeconds": 2,  # its own duration counts, not the candidate's 1 s
                "acquireTime": long_ago,
                "renewTime": long_ago,
                "leaseTransitions": 3,
            },
        },
    )
    before = time.monotonic()
    candidate = candidates(name, "a").start()
    eventually(lambda: candidate.elector.holder == "dead", "observing the dead holder")
    while time.monotonic() < before + 1.8:
        assert not candidate.elector.leading.is_set()
        time.sleep(0.01)
    took_over = eventually(candidate.elector.leading.is_set, "leading")
    assert 2.0 <= took_over - before < 2.6
    now = spec(fake, name)
    assert now["holderIdentity"] == "a"
    assert now["leaseTransitions"] == 4
    assert now["leaseDurationSeconds"] == 1
    assert now["acquireTime"] > long_ago
    assert MICRO_TIME.fullmatch(now["acquireTime"])


def test_renewal_failing_for_the_renew_deadline_loses_leadership(
    fake: FakeCluster, candidates: Callable[..., Candidate], name: str
) -> None:
    candidate = candidates(name, "a").start()
    eventually(candidate.elector.leading.is_set, "leading")
    failed_at = time.monotonic()
    fake.fail["leases"] = 500
    candidate.thread.join(3)
    assert not candidate.thread.is_alive()
    assert candidate.result is False
    assert DEADLINE - RETRY - 0.05 <= candidate.finished_at - failed_at < DEADLINE + 0.4
    assert not candidate.elector.leading.is_set()
    assert candidate.ended is not None and candidate.ended.is_set()
    assert candidate.returned.is_set()
    assert master_status(name) == 0


def test_a_hung_renewal_does_not_outlive_the_renew_deadline(
    fake: FakeCluster, candidates: Callable[..., Candidate], name: str
) -> None:
    candidate = candidates(name, "a").start()
    eventually(candidate.elector.leading.is_set, "leading")
    hung_at = time.monotonic()
    fake.slow["leases"] = 5.0
    candidate.thread.join(3)
    assert not candidate.thread.is_alive()
    assert candidate.result is False
    assert candidate.finished_at - hung_at < DEADLINE + 0.4
    assert not candidate.elector.leading.is_set()


@pytest.mark.parametrize("free_lease", [False, True], ids=["no lease", "a released lease"])
def test_candidates_started_together_elect_exactly_one(
    fake: FakeCluster, candidates: Callable[..., Candidate], name: str, free_lease: bool
) -> None:
    transitions = 0
    if free_lease:  # all read it free, all write: the resourceVersion lets one win
        released = {"holderIdentity": "", "leaseDurationSeconds": 1, "leaseTransitions": 5}
        fake.objects.put(
            LEASES, {"metadata": {"name": name, "namespace": NAMESPACE}, "spec": released}
        )
        transitions = 6
    fake.slow["leases"] = 0.05  # the candidates' calls overlap
    racing = [candidates(name, identity) for identity in "abcd"]
    for candidate in racing:
        candidate.start()

    def leaders() -> list[str]:
        return [c.identity for c in racing if c.elector.leading.is_set()]

    eventually(lambda: bool(leaders()), "a leader elected")
    watched_until = time.monotonic() + 1.5 * LEASE
    while time.monotonic() < watched_until:
        assert len(leaders()) <= 1, leaders()
        time.sleep(0.01)
    (leader,) = leaders()
    assert spec(fake, name)["holderIdentity"] == leader
    assert spec(fake, name)["leaseTransitions"] == transitions
    if not free_lease:
        assert fake.count("POST", COLLECTION) == len(racing)  # one created it, the rest got 409
    assert {c.elector.holder for c in racing} == {leader}


def test_the_gauge_is_1_exactly_while_leading(
    candidates: Callable[..., Candidate], name: str
) -> None:
    # A lease that a loaded host cannot lose between the two reads below (the short one was
    # lost once, not renewed within 0.6 s, while the full suite ran on 2 cores).
    candidate = candidates(name, "a", lease=4.0, deadline=3.0, retry=RETRY)
    assert master_status(name) == 0  # from construction
    candidate.start()
    eventually(candidate.elector.leading.is_set, "leading")
    assert master_status(name) == 1
    assert candidate.end() is True
    assert master_status(name) == 0


def test_stop_before_acquiring_returns_true_without_leading(
    fake: FakeCluster, candidates: Callable[..., Candidate], name: str
) -> None:
    fake.fail["leases"] = 500
    candidate = candidates(name, "a").start()
    eventually(lambda: fake.count("GET", f"{COLLECTION}/{name}") >= 2, "retrying")
    assert candidate.end() is True
    assert candidate.ended is None  # lead never ran
    assert not candidate.elector.leading.is_set()
    assert master_status(name) == 0
