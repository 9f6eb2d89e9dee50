"""The app in-process with a fake cluster behind it: its admission chain reads the fake's
namespaces and policies, as a server deployed in a cluster reads that cluster's."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import falcon.testing

from devtools.certs import new_ca
from proxy import authz
from proxy.app import create_app
from proxy.settings import Settings
from tests.conftest import AllowAll
from tests.fakes.cluster import FakeCluster, authentication_data


def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait for ``condition``; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(0.02)


@contextmanager
def cluster_app(
    fake: FakeCluster,
    directory: Path,
    *,
    ready: bool = True,
    authorizer: authz.Authorizer | None = None,
) -> Iterator[falcon.testing.TestClient]:
    """The app on a fresh SQLite store in ``directory``, reading ``fake``, everyone
    authorized (unless ``authorizer`` says otherwise); once ``/readyz`` passes (its caches
    synced) when ``ready``. Its threads that follow the cluster end with the context
    (nothing of it outlives the test)."""
    if not fake.configmap:  # the requests come in-process, with no certificate to check
        fake.configmap = authentication_data(new_ca("client").cert_pem, new_ca("fp").cert_pem)
    settings = Settings.from_env(
        {
            "APISERVER_SQLITE_PATH": str(directory / "store.db"),
            "APISERVER_KUBECONFIG": str(fake.kubeconfig(directory)),
            "APISERVER_REQUEST_LOG": "all",  # tests read admission's annotations in it
        }
    )
    stop = threading.Event()
    client = falcon.testing.TestClient(
        create_app(settings, authorizer=authorizer or AllowAll(), stop=stop)
    )
    try:
        if ready:
            eventually(lambda: client.simulate_get("/readyz").status_code == 200, "ready")
        yield client
    finally:
        stop.set()
