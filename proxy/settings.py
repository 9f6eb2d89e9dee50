"""Every setting of the server, read once from environment variables.

The defaults are the dev layout that ``make run`` writes into ``.dev/``, so a bare
checkout runs without configuration; a deployment sets the variables instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from k8s import SERVICE_ACCOUNT

DEV_DIR = ".dev"


@dataclass(frozen=True, slots=True)
class Settings:
    """The server's configuration (see the README's table of settings)."""

    bind_address: str
    port: int
    tls_cert_file: str
    tls_key_file: str
    client_ca_file: str
    sqlite_path: str
    database_url: str
    workers: int
    threads: int
    balance_connections: bool  # a worker accepts only while no peer holds fewer
    keepalive_linger_seconds: float  # a thread waits this long for its connection's next request
    malloc_arenas: int  # glibc's arenas for the workers' threads; 0: glibc's own (8 per core)
    max_body_bytes: int
    max_header_bytes: int  # the request line and header fields together, as kube's 1 MiB
    max_requests_inflight: int  # read-only, per server as kube's flag; shared by the workers
    max_mutating_requests_inflight: int
    request_timeout_seconds: float  # non-long-running requests; 0: none
    kubeconfig: str
    requestheader_ca_file: str
    requestheader_allowed_names: tuple[str, ...]
    requestheader_username_headers: tuple[str, ...]
    requestheader_group_headers: tuple[str, ...]
    requestheader_extra_headers_prefix: tuple[str, ...]
    requestheader_uid_headers: tuple[str, ...]
    auth_refresh_seconds: float
    auth_cache_seconds: float
    review_timeout_seconds: float
    in_cluster: bool
    service_account_dir: str  # in a pod: where the kubelet mounts the token and the CA
    user_kubeconfig: str  # KUBECONFIG: in dev, the cluster combinedtasks read (auth stays local)
    watch_bookmark_seconds: float
    events_cache_seconds: float
    combined_access_check: bool
    managed_fields: bool  # off only to measure what keeping them costs
    metrics: bool  # off only to measure what keeping them costs
    request_log: str  # which requests get a line on stdout: all, errors (5xx) or none
    metrics_dir: str  # prometheus-client's multiprocess files; "": a fresh temporary directory
    audit_policy_file: str  # kube's --audit-policy-file; "": no audit log
    audit_log_path: str  # kube's --audit-log-path; "-": stdout
    audit_log_maxsize: int  # megabytes before the file rotates; 0: never
    audit_log_maxbackup: int  # rotated files kept; 0: all
    audit_log_maxage: int  # days a rotated file is kept; 0: forever

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (the process environment by default)."""
        e = os.environ if env is None else env
        dev = e.get("APISERVER_DEV_DIR", DEV_DIR)
        return cls(
            bind_address=e.get("APISERVER_BIND_ADDRESS", "127.0.0.1"),
            port=int(e.get("PORT", "8443")),
            tls_cert_file=e.get("APISERVER_TLS_CERT_FILE", f"{dev}/serving.crt"),
            tls_key_file=e.get("APISERVER_TLS_KEY_FILE", f"{dev}/serving.key"),
            client_ca_file=e.get("APISERVER_CLIENT_CA_FILE", f"{dev}/ca.crt"),
            sqlite_path=e.get("APISERVER_SQLITE_PATH", f"{dev}/store.db"),
            database_url=e.get("APISERVER_DATABASE_URL", ""),
            workers=int(e.get("APISERVER_WORKERS", "2")),
            threads=int(e.get("APISERVER_THREADS", "512")),
            balance_connections=_enabled(e.get("APISERVER_BALANCE_CONNECTIONS", "true")),
            keepalive_linger_seconds=float(e.get("APISERVER_KEEPALIVE_LINGER_SECONDS", "0.05")),
            malloc_arenas=int(e.get("APISERVER_MALLOC_ARENAS", "2")),
            max_body_bytes=int(e.get("APISERVER_MAX_BODY_BYTES", str(3 * 1024 * 1024))),
            max_header_bytes=int(e.get("APISERVER_MAX_HEADER_BYTES", str(1024 * 1024))),
            max_requests_inflight=int(e.get("APISERVER_MAX_REQUESTS_INFLIGHT", "400")),
            max_mutating_requests_inflight=int(
                e.get("APISERVER_MAX_MUTATING_REQUESTS_INFLIGHT", "200")
            ),
            request_timeout_seconds=float(e.get("APISERVER_REQUEST_TIMEOUT_SECONDS", "60")),
            kubeconfig=e.get("APISERVER_KUBECONFIG", ""),
            requestheader_ca_file=e.get("APISERVER_REQUESTHEADER_CA_FILE", ""),
            requestheader_allowed_names=_names(e.get("APISERVER_REQUESTHEADER_ALLOWED_NAMES", "")),
            requestheader_username_headers=_names(
                e.get("APISERVER_REQUESTHEADER_USERNAME_HEADERS", "X-Remote-User")
            ),
            requestheader_group_headers=_names(
                e.get("APISERVER_REQUESTHEADER_GROUP_HEADERS", "X-Remote-Group")
            ),
            requestheader_extra_headers_prefix=_names(
                e.get("APISERVER_REQUESTHEADER_EXTRA_HEADERS_PREFIX", "X-Remote-Extra-")
            ),
            requestheader_uid_headers=_names(
                e.get("APISERVER_REQUESTHEADER_UID_HEADERS", "X-Remote-Uid")
            ),
            auth_refresh_seconds=float(e.get("APISERVER_AUTH_REFRESH_SECONDS", "30")),
            auth_cache_seconds=float(e.get("APISERVER_AUTH_CACHE_SECONDS", "10")),
            review_timeout_seconds=float(e.get("APISERVER_REVIEW_TIMEOUT_SECONDS", "10")),
            in_cluster=bool(e.get("KUBERNETES_SERVICE_HOST")),
            service_account_dir=e.get("APISERVER_SERVICE_ACCOUNT_DIR", SERVICE_ACCOUNT),
            user_kubeconfig=e.get("KUBECONFIG", ""),
            watch_bookmark_seconds=float(e.get("APISERVER_WATCH_BOOKMARK_SECONDS", "60")),
            events_cache_seconds=float(e.get("APISERVER_EVENTS_CACHE_SECONDS", "2")),
            combined_access_check=_enabled(e.get("APISERVER_COMBINED_ACCESS_CHECK", "true")),
            managed_fields=_enabled(e.get("APISERVER_MANAGED_FIELDS", "true")),
            metrics=_enabled(e.get("APISERVER_METRICS", "true")),
            request_log=_choice(e, "APISERVER_REQUEST_LOG", "errors", ("all", "errors", "none")),
            metrics_dir=e.get("APISERVER_METRICS_DIR", ""),
            audit_policy_file=e.get("APISERVER_AUDIT_POLICY_FILE", ""),
            audit_log_path=e.get("APISERVER_AUDIT_LOG_PATH", "-"),
            audit_log_maxsize=int(e.get("APISERVER_AUDIT_LOG_MAXSIZE", "0")),
            audit_log_maxbackup=int(e.get("APISERVER_AUDIT_LOG_MAXBACKUP", "0")),
            audit_log_maxage=int(e.get("APISERVER_AUDIT_LOG_MAXAGE", "0")),
        )


def _names(value: str) -> tuple[str, ...]:
    """A comma-separated list setting."""
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    """A setting with a few known values; another one stops the server, named."""
    value = env.get(name, default)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _enabled(value: str) -> bool:
    """A switch setting: on unless it says false, 0, no or off."""
    return value.lower() not in ("false", "0", "no", "off")
