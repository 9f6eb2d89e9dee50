"""gunicorn settings: HTTPS only, optional client certificates, long-lived streams.

The gthread worker is chosen (see the README for the measurement): a watch holds one
thread for up to an hour, the worker's heartbeat runs on the main thread so ``timeout``
never kills a stream, and SQLite/psycopg work without monkey-patching.
"""

import ssl
from typing import Any

from proxy import lifecycle
from proxy.settings import Settings

_settings = Settings.from_env()

bind = f"{_settings.bind_address}:{_settings.port}"
worker_class = "gthread"
workers = _settings.workers
threads = _settings.threads
worker_connections = _settings.threads * 4
timeout = 30  # for gthread a heartbeat deadline, not a request deadline
graceful_timeout = 20
keepalive = 75  # the aggregator keeps connections open; spare it TLS handshakes
certfile = _settings.tls_cert_file
keyfile = _settings.tls_key_file
ca_certs = _settings.client_ca_file
cert_reqs = ssl.CERT_OPTIONAL
control_socket_disable = True
accesslog = None
errorlog = "-"
loglevel = "info"
proc_name = "task-apiserver"


def ssl_context(conf: Any, default_ssl_context_factory: Any) -> ssl.SSLContext:
    """The default context (built per connection by gthread), restricted to TLS 1.2+."""
    context: ssl.SSLContext = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def post_worker_init(worker: Any) -> None:
    """Chain the worker's exit signal handler so open streams end cleanly on shutdown."""
    original = worker.handle_exit

    def handle_exit(sig: int, frame: Any) -> None:
        lifecycle.stopping.set()
        original(sig, frame)

    worker.handle_exit = handle_exit
