"""The TLS context gunicorn serves with, rebuilt whenever what it is made of changes.

gthread asks for a context on every accepted connection; this module answers from a cache
keyed by the serving certificate's and key's modification times and by the trusted client
CA bundle, so a rotated certificate (files swapped by the kubelet) or a rotated CA (from the
authentication ConfigMap) takes effect on the next connection, without a restart and without
touching open streams.
"""

from __future__ import annotations

import os
import ssl
import threading

_lock = threading.Lock()
_client_cas = b""
_cached: tuple[tuple[object, ...], ssl.SSLContext] | None = None


def trust_client_cas(pem: bytes) -> None:
    """Set the CA bundle client certificates may chain to (client CA + request-header CA)."""
    global _client_cas
    with _lock:
        _client_cas = pem


def trusted_client_cas() -> bytes:
    """The CA bundle handshakes verify client certificates against."""
    return _client_cas


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """TLS 1.2+ without renegotiation (as Go's server), the current serving certificate,
    optional client certificates verified against the current client CA bundle."""
    global _cached
    key = (_mtime(cert_file), _mtime(key_file), _client_cas)
    cached = _cached
    if cached is not None and cached[0] == key:
        return cached[1]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_OPTIONAL
    context.options |= ssl.OP_NO_RENEGOTIATION  # a connection's client certificate is fixed
    try:
        context.load_cert_chain(cert_file, key_file)
        if key[2]:
            context.load_verify_locations(cadata=key[2].decode())
    except (OSError, ssl.SSLError):
        if cached is None:
            raise
        return cached[1]  # files caught mid-rotation: keep serving the last good pair
    with _lock:
        _cached = (key, context)
    return context


def _mtime(path: str) -> int:
    return os.stat(path).st_mtime_ns
