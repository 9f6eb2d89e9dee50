"""Fixtures of the controller's tests: a fake cluster, and a controller leading alone on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.cluster import FakeCluster
from tests.support.controller import Running


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    with FakeCluster() as running:
        yield running


@pytest.fixture
def controller(fake: FakeCluster, tmp_path: Path) -> Iterator[Running]:
    running = Running(fake, tmp_path)
    yield running
    running.end()
