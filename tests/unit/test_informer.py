"""The informers admission reads the cluster through (R12): one list, then a watch resumed
from the last resourceVersion; a 410 lists again; ``synced`` once the first list is in and
``generation`` moving with every change, so that what is derived from the objects (compiled
policies) is kept until the next one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8s import paths
from k8s.client import Cluster
from k8s.informer import Informer
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import NAMESPACES
from tests.support.clusterapp import eventually


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    with FakeCluster() as cluster:
        yield cluster


@pytest.fixture
def informer(fake: FakeCluster, tmp_path: Path) -> Iterator[Informer]:
    fake.objects.put(NAMESPACES, {"metadata": {"name": "first"}})
    cluster = Cluster.from_environment(str(fake.kubeconfig(tmp_path)))
    assert cluster is not None
    stop = threading.Event()
    informer = Informer(cluster, paths.namespaces(), stop)
    assert not informer.synced.is_set()
    informer.start()
    try:
        assert informer.synced.wait(10)
        yield informer
    finally:
        stop.set()
        fake.objects.cut_watches()


def names(informer: Informer) -> list[str]:
    return sorted(obj["metadata"]["name"] for obj in informer.items())


def test_the_first_list_then_every_change(informer: Informer, fake: FakeCluster) -> None:
    assert names(informer) == ["first"]
    listed = informer.generation
    fake.objects.put(NAMESPACES, {"metadata": {"name": "second"}})
    eventually(lambda: names(informer) == ["first", "second"], "an addition seen")
    assert informer.generation > listed
    fake.objects.delete(NAMESPACES, "", "second")  # Terminating first: a change
    eventually(
        lambda: (informer.get("", "second") or {}).get("status") == {"phase": "Terminating"},
        "a change seen",
    )
    fake.objects.finalize_namespace("second")
    eventually(lambda: informer.get("", "second") is None, "a deletion seen")
    assert fake.count("GET", "/api/v1/namespaces", watch=False) == 1


def test_a_cut_watch_resumes_and_a_410_lists_again(informer: Informer, fake: FakeCluster) -> None:
    fake.objects.cut_watches()
    fake.objects.put(NAMESPACES, {"metadata": {"name": "resumed"}})
    eventually(lambda: "resumed" in names(informer), "a change after the cut")
    assert fake.count("GET", "/api/v1/namespaces", watch=False) == 1  # resumed, not listed
    fake.slow["namespaces"] = 1.0  # the next watch is answered after what follows
    fake.objects.cut_watches()
    fake.objects.put(NAMESPACES, {"metadata": {"name": "missed"}})
    fake.objects.compact()  # the resumed watch's resourceVersion is gone: 410
    eventually(lambda: "missed" in names(informer), "listed again after the 410")
    fake.slow.clear()
    assert fake.count("GET", "/api/v1/namespaces", watch=False) == 2
