"""The cluster's API server, spoken to as raw JSON over ``requests``' pooled transport.

The ``kubernetes`` package is used only to read configuration (in-cluster, kubeconfig, exec
plugins): its models cost ten times raw JSON on the request path, and ``responses`` can mock
``requests`` but not its urllib3 transport (see the team's python-stack-notes §4.3-§4.6).

Each request is prepared here and handed to the transport adapter (what ``responses``
replaces), with no ``requests.Session``: a Session merges its settings, cookies, hooks and the
environment into every call, 40% of a call's CPU for nothing this client uses.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import HTTPError

from k8s import SERVICE_ACCOUNT
from k8s.metrics import CLUSTER_DURATION, CLUSTER_REQUESTS

CONNECT_TIMEOUT = 5.0
"""Seconds to open a connection; the read timeout is the call's own."""

POOL_SIZE = 32
"""Connections kept per host: about the concurrency of one worker's threads."""

_BODY_TYPES = {"PATCH": "application/merge-patch+json"}
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
_HEADERS = {"Accept": "application/json", "User-Agent": "task-search (python-requests)"}
"""Sent with every call: kube's audit log and metrics name the client by its User-Agent."""

Authorization = Callable[[], str | None]
"""Gives the ``Authorization`` header for the next request (None: send none)."""


class ClusterError(Exception):
    """A cluster call failed; status is the HTTP code, or None when unreachable / timed out."""

    def __init__(
        self, message: str, status: int | None = None, body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        """The JSON object the cluster answered with (kube-apiserver's Status), if any."""


class _TokenFile:
    """The service-account token, re-read as soon as the kubelet rotates the file.

    Bound tokens expire (an hour by default); the kubelet swaps the projected file well before.
    A ``stat`` per request is cheaper than trusting a re-read period to be short enough.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._header: str | None = None

    def __call__(self) -> str | None:
        try:
            st = os.stat(self._path)
        except OSError:
            return self._header  # the kubelet swaps a symlink atomically: keep the last token
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        token = Path(self._path).read_text().strip()
                    except OSError:
                        return self._header
                    self._header = f"Bearer {token}" if token else None
                    self._stamp = stamp
        return self._header


class _ConfigurationAuthorization:
    """The header a kubernetes ``Configuration`` gives, asked per request so refresh hooks run.

    The hook may run an exec plugin and rewrite the configuration, hence the lock.
    """

    def __init__(self, configuration: Any) -> None:
        self._configuration = configuration
        self._lock = threading.Lock()

    def __call__(self) -> str | None:
        with self._lock:
            header = self._configuration.get_api_key_with_prefix(
                "BearerToken", alias="authorization"
            )
        return str(header) if header else None


class _Transport(HTTPAdapter):
    """requests' adapter for one server with fixed TLS settings and proxies: the connection
    pool and its certificate check are worked out on the first call and kept, where the
    adapter works them out again on every call, and no cookie jar is built (together 10% of a
    call's CPU). ``send`` itself is requests' own, which is what ``responses`` replaces."""

    def __init__(self, pool_maxsize: int) -> None:
        super().__init__(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=0)
        self._pool: Any = None
        self._lock = threading.Lock()

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> Any:
        with self._lock:
            if self._pool is None:
                pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
                super().cert_verify(pool, str(request.url), verify, cert)  # type: ignore[no-untyped-call]
                self._pool = pool
            return self._pool

    def cert_verify(self, conn: Any, url: str, verify: bool | str | None, cert: Any) -> None:
        """Done once, with the pool."""

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        """requests' own, but for the cookies this client never keeps."""
        response = requests.Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = str(req.url)
        response.request = req
        response.connection = self  # requests sets it so too
        return response

    def close(self) -> None:
        with self._lock:
            self._pool = None
        super().close()


def _kubernetes_config() -> Any:
    """``kubernetes.config``, imported on first use: it costs about a second and 60 MB."""
    return importlib.import_module("kubernetes.config")


def _new_configuration() -> Any:
    """A fresh ``kubernetes.client.Configuration``, never the process-wide default.

    ``proxy=""``: the package would otherwise take HTTPS_PROXY from the environment, which
    this client ignores; a kubeconfig's ``proxy-url`` still sets it.
    """
    return importlib.import_module("kubernetes.client").Configuration(proxy="")


class Cluster:
    """The cluster's API server on a pool of connections (requests' transport adapter); raw
    JSON in and out.

    Safe to share between threads: every per-request value (headers, timeout) is passed to the
    call, there are no cookies, and urllib3's pool is locked.
    """

    def __init__(
        self,
        server: str,
        *,
        ca_file: str | None = None,
        cert: tuple[str, str] | None = None,
        authorization: Authorization | None = None,
        verify: bool = True,
        proxy: str | None = None,
        timeout: float = 10.0,
        pool_maxsize: int = POOL_SIZE,
    ) -> None:
        self._server = server.rstrip("/")
        self._authorization = authorization
        self._timeout = timeout
        # Only what the configuration says: REQUESTS_CA_BUNDLE, proxies and .netrc from the
        # environment, which a Session would merge in, play no part.
        self._verify: bool | str = (ca_file or True) if verify else False
        self._cert = cert
        self._proxies = {"http": proxy, "https": proxy} if proxy else {}
        self._adapter = _Transport(pool_maxsize)

    @classmethod
    def from_environment(
        cls,
        kubeconfig: str | None = None,
        *,
        timeout: float = 10.0,
        service_account: str = SERVICE_ACCOUNT,
    ) -> Cluster | None:
        """In-cluster when KUBERNETES_SERVICE_HOST is set, else a kubeconfig; None when no cluster.

        The kubeconfig is ``kubeconfig`` (a path or a path list), else ``$KUBECONFIG`` (a path
        list, merged as kubectl does; ignored when none of its files exists), else
        ``~/.kube/config`` if it exists. A
        configuration that is present but unusable raises ClusterError (status None) rather than
        quietly running without the cluster.
        """
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return cls._in_cluster(timeout, Path(service_account))
        if kubeconfig:
            paths = [p for p in kubeconfig.split(os.pathsep) if p]
            if not any(Path(p).expanduser().is_file() for p in paths):
                raise ClusterError(f"kubeconfig {kubeconfig}: no such file")
            return cls._from_kubeconfig(kubeconfig, timeout)
        listed = os.environ.get("KUBECONFIG", "")
        if listed:
            if not any(Path(p).expanduser().is_file() for p in listed.split(os.pathsep) if p):
                return None
            return cls._from_kubeconfig(listed, timeout)
        default = Path.home() / ".kube" / "config"
        if default.is_file():
            return cls._from_kubeconfig(str(default), timeout)
        return None

    @classmethod
    def _in_cluster(cls, timeout: float, service_account: Path) -> Cluster:
        """The API server of KUBERNETES_SERVICE_HOST/PORT, trusted through the service
        account's CA and called with its token (both in the ``service_account`` directory)."""
        configuration = _new_configuration()
        token = service_account / "token"
        loader = importlib.import_module("kubernetes.config.incluster_config")
        try:
            # Our own _TokenFile re-reads the token, so the package's 1-minute hook is not used.
            loader.InClusterConfigLoader(
                token_filename=str(token),
                cert_filename=str(service_account / "ca.crt"),
                try_refresh_token=False,
            ).load_and_set(configuration)
        except Exception as exc:
            raise ClusterError(f"in-cluster configuration: {exc}") from exc
        return cls(
            configuration.host,
            ca_file=configuration.ssl_ca_cert,
            authorization=_TokenFile(str(token)),
            timeout=timeout,
        )

    @classmethod
    def _from_kubeconfig(cls, paths: str, timeout: float) -> Cluster:
        config = _kubernetes_config()
        configuration = _new_configuration()
        try:
            # persist_config=False: a server must never rewrite its operator's kubeconfig.
            config.load_kube_config(
                config_file=paths, client_configuration=configuration, persist_config=False
            )
        except Exception as exc:  # ConfigException, but also KeyError/TypeError on odd files
            raise ClusterError(f"kubeconfig {paths}: {exc}") from exc
        cert_file, key_file = configuration.cert_file, configuration.key_file
        return cls(
            configuration.host,
            ca_file=configuration.ssl_ca_cert,
            cert=(cert_file, key_file) if cert_file and key_file else None,
            authorization=_ConfigurationAuthorization(configuration),
            verify=bool(configuration.verify_ssl),
            proxy=configuration.proxy,
            timeout=timeout,
        )

    @property
    def server(self) -> str:
        """The API server's base URL, without a trailing slash."""
        return self._server

    def get(
        self, path: str, params: Mapping[str, str] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """GET ``path`` (absolute, e.g. ``/api/v1/...``) and return the JSON object answered."""
        return self._call("GET", path, params=params, timeout=timeout)

    def post(
        self, path: str, body: Mapping[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """POST ``body`` as JSON to ``path`` and return the JSON object answered."""
        return self._call("POST", path, body=body, timeout=timeout)

    def patch(
        self, path: str, body: Mapping[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Apply ``body`` to ``path`` as a JSON merge patch; the object as patched."""
        return self._call("PATCH", path, body=body, timeout=timeout)

    def watch(
        self, path: str, params: Mapping[str, str], *, idle_timeout: float | None = None
    ) -> WatchStream:
        """Open a watch of ``path``: its events, one JSON object per line, as they arrive.

        ``idle_timeout`` bounds the wait for the next byte (None: the server's ``timeoutSeconds``
        ends the stream); errors before the stream starts raise ClusterError like any call."""
        response = self._send("GET", path, {**params, "watch": "true"}, None, idle_timeout, True)
        return WatchStream(response, f"GET {path} (watch)")

    def close(self) -> None:
        """Close the pooled connections."""
        self._adapter.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        read = self._timeout if timeout is None else timeout
        response = self._send(method, path, params, body, read, False)
        try:
            parsed = _json(_content(response))
        except (requests.RequestException, HTTPError, OSError) as exc:
            raise ClusterError(f"{method} {path}: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ClusterError(
                f"{method} {path}: {response.status_code} answer is not a JSON object",
                response.status_code,
            )
        return parsed

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        read: float | None,
        stream: bool,
    ) -> requests.Response:
        """Send one request; a non-2xx answer or a failure to get one raises ClusterError."""
        call = f"{method} {path}"
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = self._server + path + (f"?{urlencode(params)}" if params else "")
        prepared.headers = CaseInsensitiveDict(_HEADERS)
        prepared.body = None
        try:
            header = self._authorization() if self._authorization else None
        except Exception as exc:  # an exec plugin or token file failing: the call cannot go out
            raise ClusterError(f"{call}: credentials: {exc}") from exc
        if header:
            prepared.headers["Authorization"] = header
        if body is not None:
            prepared.body = orjson.dumps(body if isinstance(body, dict) else dict(body))
            prepared.headers["Content-Type"] = _BODY_TYPES.get(method, "application/json")
            prepared.headers["Content-Length"] = str(len(prepared.body))
        elif method in _BODY_METHODS:
            prepared.headers["Content-Length"] = "0"
        timeout: tuple[float, float] | tuple[float, None] = (
            (CONNECT_TIMEOUT, None) if read is None else (min(CONNECT_TIMEOUT, read), read)
        )
        verb = "WATCH" if stream else method
        started = time.perf_counter()
        code = "<error>"
        try:
            response = self._adapter.send(
                prepared,
                stream=stream,
                timeout=timeout,
                verify=self._verify,
                cert=self._cert,
                proxies=self._proxies,
            )
            code = str(response.status_code)
        except requests.RequestException as exc:
            raise ClusterError(f"{call}: {exc}") from exc
        finally:
            _observe(verb, code, time.perf_counter() - started)
        if not 200 <= response.status_code < 300:
            try:
                content = _content(response)
            except (requests.RequestException, HTTPError, OSError):
                content = b""
            parsed = _json(content)
            status = parsed if isinstance(parsed, dict) else None
            detail = (status or {}).get("message") or _snippet(content) or response.reason
            raise ClusterError(f"{call}: {code} {detail}".rstrip(), response.status_code, status)
        return response


class WatchStream:
    """The events of an open watch; ``close()`` ends it early (the connection is dropped)."""

    def __init__(self, response: requests.Response, call: str) -> None:
        self._response = response
        self._call = call

    def __iter__(self) -> Iterator[dict[str, Any]]:
        pending = b""
        try:
            for data in self._response.iter_content(chunk_size=None):
                lines = (pending + data).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if line.strip():
                        yield _event(line, self._call)
        except requests.RequestException as exc:
            raise ClusterError(f"{self._call}: {exc}") from exc
        finally:
            self._response.close()
        if pending.strip():
            yield _event(pending, self._call)

    def close(self) -> None:
        """End the stream now, even while another thread waits in a read: closing the
        response alone would wait for that read, that is for the next event."""
        connection = getattr(self._response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._response.close()


def _content(response: requests.Response) -> bytes:
    """The whole body, read from the connection at once and the connection handed back to
    the pool (``response.content`` reads it through two generators in 10 kB steps: 12% of a
    call's CPU)."""
    data: bytes = response.raw.read(decode_content=True)
    response.raw.release_conn()
    return data


@functools.cache
def _series(verb: str, code: str) -> tuple[Any, Any]:
    return CLUSTER_DURATION.labels(verb), CLUSTER_REQUESTS.labels(verb, code)


def _observe(verb: str, code: str, seconds: float) -> None:
    duration, requests_ = _series(verb, code)
    duration.observe(seconds)
    requests_.inc()


def _event(line: bytes, call: str) -> dict[str, Any]:
    event = _json(line)
    if not isinstance(event, dict):
        raise ClusterError(f"{call}: a watch event is not a JSON object")
    return event


def _json(content: bytes) -> Any:
    try:
        return orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        return None


def _snippet(content: bytes, limit: int = 200) -> str:
    """The start of a non-JSON error body (a proxy's HTML page, say), on one line."""
    text = content[:limit].decode("utf-8", "replace")
    return " ".join(text.split())
