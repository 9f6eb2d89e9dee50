"""gunicorn settings: HTTPS only, optional client certificates, long-lived streams.

The gthread worker is chosen (see the README for the measurement): a watch holds one
thread for up to an hour, the worker's heartbeat runs on the main thread so ``timeout``
never kills a stream, and SQLite/psycopg work without monkey-patching. It runs as
:class:`proxy.worker.StatusWorker`, which reads a request's line and headers within one
budget (``APISERVER_MAX_HEADER_BYTES``, kube's 1 MiB) and answers what gunicorn refuses
itself with a Status; gunicorn's own ``limit_request_*`` settings stay at their defaults and
bind only a worker class given on the command line (the bench's gevent).
"""

import signal
import ssl
from typing import Any

from proxy import arenas, balance, jsonlog, lifecycle, metricsdir, tls
from proxy.settings import Settings

_settings = Settings.from_env()

bind = f"{_settings.bind_address}:{_settings.port}"
worker_class = "proxy.worker.StatusWorker"  # gthread; kube's head limit; errors as Status
workers = _settings.workers
threads = _settings.threads
worker_connections = _settings.threads + 256  # every watch plus room for short requests
timeout = 30  # for gthread a heartbeat deadline, not a request deadline
graceful_timeout = 20
keepalive = 75  # the aggregator keeps connections open; spare it TLS handshakes
certfile = _settings.tls_cert_file
keyfile = _settings.tls_key_file
cert_reqs = ssl.CERT_OPTIONAL  # the trusted CAs come from proxy.tls, which follows rotations
header_map = "drop"  # X_Remote_User must never pass for X-Remote-User
control_socket_disable = True
accesslog = None  # the app writes its own request lines
logger_class = "proxy.jsonlog.GunicornLogger"  # without gunicorn's access log
logconfig_dict = jsonlog.gunicorn_config()
proc_name = "task-apiserver"


def on_starting(server: Any) -> None:
    """Before any worker: the limit of malloc arenas its threads inherit, the empty
    directory of the workers' metrics files, and the board on which workers share their
    connection counts."""
    if _settings.malloc_arenas:
        arenas.limit(_settings.malloc_arenas)
    if _settings.metrics:
        metricsdir.prepare(_settings.metrics_dir)
    if _settings.balance_connections:
        balance.open_board(server.num_workers)


def pre_fork(server: Any, worker: Any) -> None:
    balance.assign(server, worker)


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended (restarted, killed): its counts go to the archive, its files away, its
    slot of the board to the next worker."""
    balance.release(worker)
    if _settings.metrics:
        metricsdir.retire(worker.pid)


def on_exit(server: Any) -> None:
    if _settings.metrics:
        metricsdir.remove()


def ssl_context(conf: Any, default_ssl_context_factory: Any) -> ssl.SSLContext:
    """TLS 1.2+ with the current certificate and client CAs (asked per connection by gthread,
    answered from a cache that follows rotations)."""
    return tls.server_context(conf.certfile, conf.keyfile)


def post_worker_init(worker: Any) -> None:
    """Chain the worker's exit signal handler so open streams end cleanly on shutdown."""
    original = worker.handle_exit

    def handle_exit(sig: int, frame: Any) -> None:
        lifecycle.stopping.set()
        original(sig, frame)

    worker.handle_exit = handle_exit
    signal.signal(signal.SIGTERM, handle_exit)  # the handler was registered before this hook
