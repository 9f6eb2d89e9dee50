"""A fake cluster with two namespaces (``team``, labelled ``tier: gold``, and ``lab``), and
the app in process reading it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from falcon.testing import TestClient

from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import NAMESPACES
from tests.support.clusterapp import cluster_app


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    with FakeCluster() as cluster:
        cluster.objects.put(NAMESPACES, {"metadata": {"name": "team", "labels": {"tier": "gold"}}})
        cluster.objects.put(NAMESPACES, {"metadata": {"name": "lab"}})
        yield cluster


@pytest.fixture
def client(fake: FakeCluster, tmp_path: Path) -> Iterator[TestClient]:
    with cluster_app(fake, tmp_path) as app:
        yield app
