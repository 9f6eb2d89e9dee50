"""Where authentication trusts come from, kept fresh while the server runs.

With a cluster, the ConfigMap ``kube-system/extension-apiserver-authentication`` (written by
kube-apiserver) names the client CA, the front-proxy CA, the allowed front-proxy names and the
header names; it is re-read periodically so CA rotations apply without a restart. Without a
cluster (dev), the same facts come from settings files. Until a configuration is loaded the
server is not ready; a cluster without a front-proxy CA is reported, not served anonymously.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from proxy import lifecycle, tls
from proxy.settings import Settings

log = logging.getLogger("apiserver.auth")


@dataclass(frozen=True, slots=True)
class RequestHeader:
    """Front-proxy (request-header) authentication: whom to trust and which headers to read."""

    cas: tuple[x509.Certificate, ...]
    allowed_names: frozenset[str]
    username_headers: tuple[str, ...]
    group_headers: tuple[str, ...]
    extra_prefixes: tuple[str, ...]
    uid_headers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """The trusts in force."""

    client_cas: tuple[x509.Certificate, ...]
    request_header: RequestHeader | None


def _certificates(pem: bytes) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificates(pem)) if pem.strip() else ()


def _list(value: str | None, default: Sequence[str] = ()) -> tuple[str, ...]:
    """A ConfigMap list value: a JSON array in a string."""
    if not value:
        return tuple(default)
    parsed = orjson.loads(value)
    if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
        raise ValueError(f"expected a JSON array of strings, got {value!r}")
    return tuple(parsed)


def from_configmap(data: dict[str, str]) -> AuthConfig:
    """The configuration kube-apiserver publishes for extension servers (A2)."""
    ca = data.get("requestheader-client-ca-file", "").encode()
    if not ca.strip():
        raise ValueError(
            "the cluster's extension-apiserver-authentication ConfigMap has no "
            "requestheader-client-ca-file: front-proxy requests cannot be authenticated "
            "(is kube-apiserver configured with --requestheader-client-ca-file?)"
        )
    header = RequestHeader(
        cas=_certificates(ca),
        allowed_names=frozenset(_list(data.get("requestheader-allowed-names"))),
        username_headers=_list(data.get("requestheader-username-headers"), ["X-Remote-User"]),
        group_headers=_list(data.get("requestheader-group-headers"), ["X-Remote-Group"]),
        extra_prefixes=_list(data.get("requestheader-extra-headers-prefix"), ["X-Remote-Extra-"]),
        uid_headers=_list(data.get("requestheader-uid-headers")),
    )
    return AuthConfig(_certificates(data.get("client-ca-file", "").encode()), header)


def from_settings(settings: Settings) -> AuthConfig:
    """The dev configuration: CA files named in settings."""
    header = None
    if settings.requestheader_ca_file:
        header = RequestHeader(
            cas=_certificates(Path(settings.requestheader_ca_file).read_bytes()),
            allowed_names=frozenset(settings.requestheader_allowed_names),
            username_headers=settings.requestheader_username_headers,
            group_headers=settings.requestheader_group_headers,
            extra_prefixes=settings.requestheader_extra_headers_prefix,
            uid_headers=settings.requestheader_uid_headers,
        )
    return AuthConfig(_certificates(Path(settings.client_ca_file).read_bytes()), header)


class AuthConfigSource:
    """Loads the configuration, refreshes it on a period, and says why it is not ready."""

    def __init__(
        self,
        load: Callable[[], AuthConfig],
        refresh_seconds: float,
        stop: threading.Event = lifecycle.stopping,
    ) -> None:
        self._load = load
        self._refresh_seconds = refresh_seconds
        self._stop = stop
        self._current: AuthConfig | None = None
        self._problem = "not loaded yet"
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> AuthConfig | None:
        return self._current

    def refresh(self) -> None:
        """Load once; on success the new trusts apply to the next TLS handshake."""
        try:
            config = self._load()
        except ValueError as ex:  # the configuration itself is wrong: stop serving on it
            self._current, self._problem = None, str(ex)
            log.error("authentication configuration rejected: %s", ex)
            return
        except Exception as ex:  # not reachable now: keep the last good configuration
            self._problem = str(ex) or type(ex).__name__
            log.warning("authentication configuration not refreshed: %s", self._problem)
            return
        cas = config.client_cas + (config.request_header.cas if config.request_header else ())
        tls.trust_client_cas(b"".join(_pem(c) for c in cas))
        self._current, self._problem = config, ""

    def check(self) -> str:
        """Empty when a configuration is in force, else why not (for ``/readyz``)."""
        if self._current is None:
            self.refresh()
        return "" if self._current is not None else self._problem

    def start(self) -> None:
        """Refresh in a daemon thread until ``stop`` is set (the process's end)."""
        if self._thread is not None or self._refresh_seconds <= 0:
            return

        def run() -> None:
            while not self._stop.wait(self._refresh_seconds):
                self.refresh()

        self._thread = threading.Thread(target=run, name="auth-config", daemon=True)
        self._thread.start()


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)
