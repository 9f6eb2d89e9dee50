"""The ``kubectl`` fixture: each test once per kubectl version, against the shared server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kubectl.test_kubectl import KindKubectl
from tests.support.kubectl import BINARIES
from tests.support.servers import Server


@pytest.fixture(params=list(BINARIES))
def kubectl(request: pytest.FixtureRequest, server: Server, tmp_path: Path) -> KindKubectl:
    version: str = request.param
    return KindKubectl(version, BINARIES[version], server.kubeconfig(), tmp_path, server)
