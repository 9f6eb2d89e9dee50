"""Start gunicorn exactly as the Procfile does, but with any app and extra options.

The constant-JSON ceiling and the gevent comparison are only meaningful under the very
settings the server is deployed with: same config file, workers, threads, TLS and client
certificates. So the Procfile's command line is reused with only its app (and, for the
worker class, command-line options, which override the config file) changed: the tests'
launcher, :func:`devtools.launch.run_web`, starts, awaits and stops each server.

A server may also be given a cluster: a :class:`tests.fakes.cluster.FakeCluster` on loopback,
named by ``APISERVER_KUBECONFIG``, publishing the server's client CA in its authentication
ConfigMap and allowing :data:`SAR_USER` (only) in its SubjectAccessReviews, as RBAC would
with one binding. ``system:masters`` needs no review, so admin requests never reach it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.wire import Target
from devtools.certs import new_ca
from devtools.launch import ROOT, Pki, argv, run_web
from tests.fakes.cluster import FakeCluster
from tests.fakes.objects import NAMESPACES

__all__ = [  # argv comes from devtools.launch
    "CONSTANT_APP",
    "GROUPS",
    "REAL_APP",
    "SAR_USER",
    "USER",
    "Launch",
    "Served",
    "allow_sar_user",
    "argv",
    "serve",
    "start_cluster",
]

REAL_APP = "proxy.app:create_app()"
CONSTANT_APP = "bench.constant:create_app()"
USER, GROUPS = "bench-admin", ("system:masters",)
SAR_USER: tuple[str, tuple[str, ...]] = ("bench-user", ("bench",))
"""A user outside ``system:masters``: every request of it is authorized by a review."""
_LOG_MARKERS = (
    "Traceback",
    "WORKER TIMEOUT",
    '"level":"error"',
    '"level":"critical"',
    "was sent SIG",
)


@dataclass(frozen=True, slots=True)
class Served:
    """A running gunicorn: how to reach it as an admin, its pid, its log, its PKI and the
    fake cluster it asks, if any."""

    target: Target
    pid: int
    log_path: Path
    pki: Pki
    cluster: FakeCluster | None = None

    def as_user(self, name: str, groups: tuple[str, ...]) -> Served:
        """The same server, reached with a client certificate for ``name`` in ``groups``."""
        cert, key = self.pki.client(name, groups)
        target = dataclasses.replace(self.target, cert_file=cert, key_file=key)
        return dataclasses.replace(self, target=target)

    def reviews(self) -> int:
        """SubjectAccessReviews the cluster has received so far (0 without a cluster)."""
        return len(self.cluster.reviews()) if self.cluster else 0

    def problems(self) -> list[str]:
        """Log lines that say something went wrong (tracebacks, killed workers)."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if any(m in line for m in _LOG_MARKERS)]

    def worker_boots(self) -> int:
        """Workers started so far; more than configured means some died and were replaced."""
        return self.log_path.read_text(errors="replace").count("Booting worker")


def allow_sar_user(spec: dict[str, Any]) -> tuple[bool, str]:
    """The fake cluster's RBAC: :data:`SAR_USER` may do anything, nobody else anything."""
    if spec.get("user") == SAR_USER[0]:
        return True, "bench: allowed by the fake cluster"
    return False, ""


BENCH_NAMESPACES = (
    "default",
    "bench-list",
    "bench-create",
    "bench-watch",
    "bench-watchlist",
    "bench-combined",
    "bench-webhooks",
    "observed",
    "creates",
    "ownership",
    "scale",
)
"""Every namespace a benchmark writes in."""


def start_cluster(stack: ExitStack, directory: Path, pki: Pki) -> tuple[FakeCluster, str]:
    """A fake cluster trusting ``pki``'s client CA, started on ``stack``; and its kubeconfig."""
    cluster = stack.enter_context(FakeCluster())
    cluster.configmap = {
        "client-ca-file": pki.ca.cert_pem.decode(),
        "requestheader-client-ca-file": new_ca("bench-front-proxy-ca").cert_pem.decode(),
        "requestheader-allowed-names": '["front-proxy-client"]',
    }
    cluster.decide = allow_sar_user
    for namespace in BENCH_NAMESPACES:  # NamespaceLifecycle admits writes only where one is
        cluster.objects.put(NAMESPACES, {"metadata": {"name": namespace}})
    return cluster, str(cluster.kubeconfig(directory / "kubeconfig"))


@contextmanager
def serve(
    directory: Path,
    app: str | None,
    *,
    options: Sequence[str] = (),
    workers: int = 2,
    cluster: bool = False,
    env: Mapping[str, str] | None = None,
    root: Path = ROOT,
) -> Iterator[Served]:
    """Run gunicorn with its own PKI and a fresh database under ``directory`` (and its own
    fake cluster if asked), with ``env`` over the usual settings; SIGTERM after. ``app``
    None is the Procfile's own; ``root`` the source tree (an older revision's, say).

    The store is SQLite unless ``env`` names a database: a database URL in the bench's own
    environment would otherwise make every phase measure that database under SQLite's name.
    """
    pki = Pki.create(directory / "pki")
    for old in directory.glob("store.db*"):  # a kept directory from an earlier run
        old.unlink()
    settings = {"APISERVER_DATABASE_URL": "", **(env or {})}
    cert, key = pki.client(USER, GROUPS)
    with ExitStack() as stack:
        fake = None
        if cluster:
            fake, settings["APISERVER_KUBECONFIG"] = start_cluster(stack, directory, pki)
        running = stack.enter_context(
            run_web(
                directory,
                pki=pki,
                workers=workers,
                env=settings,
                app=app,
                options=options,
                root=root,
            )
        )
        target = Target("127.0.0.1", running.port, pki.ca_file, cert, key)
        yield Served(target, running.process.pid, running.log_path, pki, fake)


@dataclass(frozen=True, slots=True)
class Launch:
    """How every server of one run starts: worker count and extra gunicorn options."""

    workers: int = 2
    options: tuple[str, ...] = ()

    def serve(
        self,
        directory: Path,
        app: str | None,
        *extra: str,
        cluster: bool = False,
        env: Mapping[str, str] | None = None,
        root: Path = ROOT,
    ) -> AbstractContextManager[Served]:
        """:func:`serve` with this run's settings plus ``extra`` options and ``env``."""
        options = (*self.options, *extra)
        return serve(
            directory,
            app,
            options=options,
            workers=self.workers,
            cluster=cluster,
            env=env,
            root=root,
        )
