"""A fake kube-apiserver for tests: HTTPS on loopback, its own CA, bearer-token auth, JSON only.

It answers what this server asks of a real cluster, in kube's shapes and wording, so the code
under test runs its real client (``k8s.client.Cluster``) over real TLS. Routes are a table of
``(method, path regex) -> handler`` so later kinds (Tasks, Events, watches) are added as entries.

Tests break it on purpose: ``fail`` and ``slow`` per resource, ``fail_next`` for one request
(its write done or not), ``down`` for the whole cluster,
``cut_connections`` (and ``objects.cut_watches``) for dropped streams; ``count`` tells how often
the code under test called it.
"""

from __future__ import annotations

import contextlib
import functools
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import yaml

from devtools.certs import issue, new_ca
from tests.fakes.errors import StatusError
from tests.fakes.objects import CONFIGMAPS, Objects, install

CONFIGMAP_PATH = r"/api/v1/namespaces/(?P<namespace>[^/]+)/configmaps/(?P<name>[^/]+)"
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
FAKE_USER = "system:serviceaccount:default:fake"
"""Who the code under test is to the fake: named in its Forbidden answers."""
RESOURCE_PATH = re.compile(
    r"/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/(?P<namespace>[^/]+))?"
    r"/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?(?:/[^/]+)?"
)
"""kube's resource paths: core or group, optional namespace, resource, name, subresource."""

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
"""kube's Status reasons by code (``""`` is kube's StatusReasonUnknown)."""


@dataclass
class Recorded:
    """One request as the fake received it (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    """What a route answers: a status code and a JSON body, or a ``stream`` of JSON objects
    (a watch: one line each, chunked, each sent as soon as it is there)."""

    code: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[Any] | None = None


@dataclass
class Call:
    """A request handed to a route: what was received and the path pattern's named groups."""

    request: Recorded
    params: dict[str, str]


Route = Callable[[Call], Reply]


@dataclass(frozen=True)
class Target:
    """What a request acts on, as kube's RequestInfo names it (for per-resource failures)."""

    verb: str
    group: str
    resource: str
    namespace: str = ""
    name: str = ""

    @classmethod
    def of(cls, request: Recorded) -> Target | None:
        """The target of a request on a resource path; ``None`` for any other path."""
        match = RESOURCE_PATH.fullmatch(request.path)
        if match is None:
            return None
        name = match["name"] or ""
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(request.method, "")
        if request.method == "GET":
            verb = "get" if name else "watch" if is_watch(request.query) else "list"
        elif request.method == "DELETE":
            verb = "delete" if name else "deletecollection"
        return cls(verb, match["group"] or "", match["resource"], match["namespace"] or "", name)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def is_watch(query: Mapping[str, str]) -> bool:
    """A watch request, as the fake's routes tell one from a list."""
    return query.get("watch") in ("true", "1")


def status(
    code: int, message: str, *, reason: str | None = None, details: dict[str, Any] | None = None
) -> Reply:
    """A metav1.Status reply as kube-apiserver writes it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": REASONS.get(code, "") if reason is None else reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return Reply(code, body)


def forbidden(target: Target) -> Reply:
    """kube's Forbidden for ``FAKE_USER`` (RBAC with no binding, so no reason follows)."""
    qualified = f"{target.resource}.{target.group}" if target.group else target.resource
    subject = f'{qualified} "{target.name}"' if target.name else qualified
    scope = f'in the namespace "{target.namespace}"' if target.namespace else "at the cluster scope"
    details = {"name": target.name, "group": target.group, "kind": target.resource}
    return status(
        403,
        f'{subject} is forbidden: User "{FAKE_USER}" cannot {target.verb} resource '
        f'"{target.resource}" in API group "{target.group}" {scope}',
        details={key: value for key, value in details.items() if value},
    )


def failure(code: int, target: Target) -> Reply:
    """An injected failure, worded as kube-apiserver words that code."""
    if code == 403:
        return forbidden(target)
    if code == 429:  # max-in-flight or priority and fairness rejected the request
        reply = status(
            429, "Too many requests, please try again later.", details={"retryAfterSeconds": 1}
        )
        reply.headers["Retry-After"] = "1"
        return reply
    if code == 500:
        return status(500, "Internal error occurred: fake cluster failure")
    if code == 504:  # the request outlived its deadline
        return status(
            504,
            "Timeout: request did not complete within requested timeout - context deadline "
            "exceeded",
        )
    return status(code, f"fake cluster failure {code}")


def authentication_data(
    client_ca: bytes, front_proxy_ca: bytes, allowed_names: Sequence[str] = ()
) -> dict[str, str]:
    """The data of ``kube-system/extension-apiserver-authentication`` as kube-apiserver writes
    it, for the given client CA and front-proxy (request-header) CA."""
    return {
        "client-ca-file": client_ca.decode(),
        "requestheader-client-ca-file": front_proxy_ca.decode(),
        "requestheader-allowed-names": orjson.dumps(list(allowed_names)).decode(),
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
        "requestheader-uid-headers": '["X-Remote-Uid"]',
    }


def default_decide(spec: dict[str, Any]) -> tuple[bool, str]:
    """RBAC with no binding: not allowed, no reason (kube omits ``denied`` for no opinion)."""
    return False, ""


class FakeCluster:
    """A kube-apiserver on ``https://127.0.0.1:<free port>``; every attribute may change live.

    Bound in the constructor (so ``url`` and ``kubeconfig()`` work before ``start``), served by a
    ThreadingHTTPServer in a daemon thread between ``start``/``stop`` or inside ``with``. It is
    started once: ``stop`` closes the socket.
    """

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="fakecluster-")
        directory = Path(self._dir.name)
        ca = new_ca("fake-kube-apiserver-ca")
        leaf = issue(
            ca,
            "fake-kube-apiserver",
            dns_names=["localhost"],
            ip_addresses=["127.0.0.1"],
            server=True,
        )
        self.ca_file = str(directory / "ca.crt")
        Path(self.ca_file).write_bytes(ca.cert_pem)
        (directory / "serving.crt").write_bytes(leaf.cert_pem)
        (directory / "serving.key").write_bytes(leaf.key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(directory / "serving.crt", directory / "serving.key")

        self.token = f"fake-token-{secrets.token_hex(8)}"
        self.configmap: dict[str, str] | None = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.decide: Callable[[dict[str, Any]], tuple[bool, str]] = default_decide
        self.failure: int | None = None
        """A code every review answers with (kube's Forbidden for 403)."""
        self.delay = 0.0
        """Seconds each review takes."""
        self.fail: dict[str, int] = {}
        """Resource plural (``"tasks"``, ``"events"``, ...) -> the code its requests answer with,
        watches included, as :func:`failure` words it."""
        self.slow: dict[str, float] = {}
        """Resource plural -> seconds its requests wait before being answered."""
        self._next_failures: list[tuple[str, str, int, bool]] = []
        self._down = False
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self.routes: dict[tuple[str, str], Route] = {
            ("POST", TOKEN_REVIEWS): self._token_review,
            ("POST", SUBJECT_ACCESS_REVIEWS): self._subject_access_review,
        }
        """``(method, path regex) -> route``; a regex must match the whole path."""
        self.objects = Objects()
        """Tasks, Events, Namespaces, ConfigMaps, Leases and admission policies (see
        ``tests.fakes.objects``), served under their kube paths."""
        install(self, self.objects)
        self.route("GET", CONFIGMAP_PATH, self._get_configmap)  # the authentication ConfigMap

        self._server = _Server(self, context)
        port = self._server.server_address[1]
        self.url = f"https://127.0.0.1:{port}"
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeCluster:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown waits up to one interval
            name="fakecluster",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def down(self) -> bool:
        """While true, every connection is dropped before its TLS handshake, as when the
        apiserver is gone; setting it cuts the open connections too."""
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        self._down = value
        if value:
            self.cut_connections()

    def cut_connections(self) -> None:
        """Drop every open connection with no last chunk (a crash or a broken network, not a
        watch timeout: that is ``objects.cut_watches``); pooled clients reconnect."""
        self._server.cut_connections()
        self.objects.cut_watches()  # releases the threads of the watches just dropped

    def stop(self) -> None:
        """Stop serving and cut open connections (a pooled client reconnects and is refused);
        open watches end first, with their last chunk, as kube-apiserver's do when it stops."""
        self.objects.cut_watches()
        self._server.wait_for_streams(2.0)
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.cut_connections()
        self._server.server_close()

    def __enter__(self) -> FakeCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- for tests ---------------------------------------------------------------------------

    def kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig for this fake (server, CA file, token) at ``path``.

        A directory (``tmp_path``) gets a file named ``kubeconfig`` inside.
        """
        if path.is_dir():
            path = path / "kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "fake",
                    "cluster": {"server": self.url, "certificate-authority": self.ca_file},
                }
            ],
            "users": [{"name": "fake", "user": {"token": self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def reviews(self, kind: str = "subjectaccessreviews") -> list[dict[str, Any]]:
        """Bodies of the reviews of that kind received so far (or ``tokenreviews``)."""
        return [
            r.body
            for r in self.recorded()
            if r.method == "POST" and r.path.endswith(f"/{kind}") and isinstance(r.body, dict)
        ]

    def recorded(self) -> list[Recorded]:
        """A snapshot of ``requests`` (the list itself grows while the fake serves)."""
        with self._lock:
            return list(self.requests)

    def count(self, method: str, pattern: str, *, watch: bool | None = None) -> int:
        """Requests received with ``method`` on a path that ``pattern`` matches whole: only
        watches when ``watch`` is true, only the others when false, all when ``None``."""
        return sum(
            1
            for request in self.recorded()
            if request.method == method
            and re.fullmatch(pattern, request.path)
            and (watch is None or is_watch(request.query) == watch)
        )

    def fail_next(self, method: str, resource: str, code: int, *, applied: bool = False) -> None:
        """The next ``method`` request on ``resource`` (a plural) answers ``code``, as
        :func:`failure` words it; with ``applied`` the request is carried out first and only
        its answer is lost (a timeout after the write, as a client sees it)."""
        with self._lock:
            self._next_failures.append((method, resource, code, applied))

    def _next_failure(self, method: str, resource: str) -> tuple[int, bool] | None:
        with self._lock:
            for index, (m, r, code, applied) in enumerate(self._next_failures):
                if (m, r) == (method, resource):
                    del self._next_failures[index]
                    return code, applied
        return None

    def route(self, method: str, pattern: str, handler: Route) -> None:
        """Add or replace a route."""
        self.routes[(method, pattern)] = handler

    # -- serving -----------------------------------------------------------------------------

    def answer(self, request: Recorded) -> Reply:
        """Record, authenticate and route one request."""
        with self._lock:
            self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized")
        target = Target.of(request)
        if target is not None:
            if self.slow.get(target.resource):
                time.sleep(self.slow[target.resource])
            code = self.fail.get(target.resource)
            if code is not None:
                return failure(code, target)
            once = self._next_failure(request.method, target.resource)
            if once is not None:
                if once[1]:
                    self._route(request)
                return failure(once[0], target)
        return self._route(request)

    def _route(self, request: Recorded) -> Reply:
        routes = list(self.routes.items())
        for (method, pattern), handler in routes:
            if method == request.method:
                match = _compiled(pattern).fullmatch(request.path)
                if match is not None:
                    return handler(Call(request, match.groupdict()))
        if any(_compiled(pattern).fullmatch(request.path) for _, pattern in self.routes):
            return status(405, "the server does not allow this method on the requested resource")
        return status(404, "the server could not find the requested resource")

    def _review_preamble(self, call: Call, kind: str, group: str) -> Reply | None:
        """What reviews share: the delay, the injected failure and kube's body checks."""
        if self.delay:
            time.sleep(self.delay)
        if self.failure is not None:
            return failure(self.failure, Target("create", group, f"{kind.lower()}s"))
        body = call.request.body
        if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
            return status(400, f"the body of the request was not a {kind} object")
        if body.get("kind") != kind or body.get("apiVersion") != f"{group}/v1":
            return status(
                400,
                f"the API version in the data ({body.get('apiVersion')}) does not match the "
                f"expected API version ({group}/v1) or the kind is not {kind}",
            )
        return None

    def _get_configmap(self, call: Call) -> Reply:
        namespace, name = call.params["namespace"], call.params["name"]
        data = self.configmap
        if (namespace, name) != (
            "kube-system",
            "extension-apiserver-authentication",
        ) or data is None:
            try:  # any other ConfigMap is one of the objects
                return Reply(200, self.objects.read(CONFIGMAPS, namespace, name))
            except StatusError as error:
                return status(error.code, error.message, details=error.details)
        return Reply(
            200,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "uid": "8a0c1a9e-0000-4000-8000-00000000a002",
                    "resourceVersion": "42",
                    "creationTimestamp": "2025-01-01T00:00:00Z",
                },
                "data": dict(data),
            },
        )

    def _token_review(self, call: Call) -> Reply:
        failed = self._review_preamble(call, "TokenReview", "authentication.k8s.io")
        if failed:
            return failed
        spec = call.request.body["spec"]
        token = spec.get("token")
        if not token:
            return status(400, "token is required for TokenReview in authentication")
        user = self.tokens.get(token)
        result: dict[str, Any]
        if user is None:
            # kube omits "authenticated" when false (omitempty) and names the failure in "error".
            result = {"user": {}, "error": "[invalid bearer token, token lookup failed]"}
        else:
            result = {"authenticated": True, "user": dict(user)}
            audiences = spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local"]
            result["audiences"] = list(audiences)
        return Reply(201, _review("authentication.k8s.io/v1", "TokenReview", spec, result))

    def _subject_access_review(self, call: Call) -> Reply:
        failed = self._review_preamble(call, "SubjectAccessReview", "authorization.k8s.io")
        if failed:
            return failed
        spec = call.request.body["spec"]
        problem = _sar_spec_problem(spec)
        if problem:
            return status(
                422,
                f'SubjectAccessReview.authorization.k8s.io "" is invalid: {problem}',
                details={"group": "authorization.k8s.io", "kind": "SubjectAccessReview"},
            )
        allowed, reason = self.decide(spec)
        result: dict[str, Any] = {"allowed": allowed}
        if reason:
            result["reason"] = reason
        return Reply(201, _review("authorization.k8s.io/v1", "SubjectAccessReview", spec, result))


def _review(api_version: str, kind: str, spec: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": result,
    }


def _sar_spec_problem(spec: dict[str, Any]) -> str:
    """kube's validation of a SubjectAccessReview spec, in its wording; "" when valid."""
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is None and non_resource is None:
        return (
            "spec.resourceAttributes: Required value: exactly one of nonResourceAttributes or "
            "resourceAttributes must be specified"
        )
    if resource is not None and non_resource is not None:
        return (
            "spec.nonResourceAttributes: Invalid value: ...: cannot be specified in combination "
            "with resourceAttributes"
        )
    if not spec.get("user") and not spec.get("groups"):
        return 'spec.user: Invalid value: "": at least one of user or group must be specified'
    return ""


class _Server(ThreadingHTTPServer):
    """Handshakes in the connection's own thread, so one slow client never stalls accept."""

    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops bursts of connects for a second

    def __init__(self, fake: FakeCluster, context: ssl.SSLContext) -> None:
        self.fake = fake
        self.context = context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.streams = 0  # responses being streamed, under streams_done's lock
        self.streams_done = threading.Condition()
        super().__init__(("127.0.0.1", 0), _Handler)

    def wait_for_streams(self, seconds: float) -> None:
        """Let streams whose items have ended write their last chunk (bounded)."""
        with self.streams_done:
            self.streams_done.wait_for(lambda: self.streams == 0, seconds)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.fake.down:
            request.close()
            return
        request.settimeout(_Handler.timeout)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that refused our CA, or went away mid-handshake
        with self.connections_lock:
            self.connections.add(tls)
        try:
            super().finish_request(tls, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(tls)
            tls.close()

    def cut_connections(self) -> None:
        with self.connections_lock:
            connections, self.connections = list(self.connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections cut by a client or by ``stop`` are normal here, not tracebacks."""


MAX_HEADERS, MAX_LINE = 100, 65536  # http.client's limits


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the pooled client expects
    # the headers and the body go out in two writes: with Nagle's algorithm the body would
    # wait for the client's delayed ACK (40 ms a request); Go's net/http sets TCP_NODELAY too
    disable_nagle_algorithm = True
    timeout = 30  # an idle keep-alive connection releases its thread
    server: _Server
    fields: dict[str, str]

    def parse_request(self) -> bool:
        """http.server's, for the HTTP/1.x requests clients send, with the header lines split
        here rather than by the ``email`` package, which took a third of the fake's CPU a
        request: fields in ``self.fields``, names lower-cased, repeated ones joined."""
        self.close_connection = True
        raw: bytes = getattr(self, "raw_requestline", b"")  # set by handle_one_request
        self.requestline = str(raw, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({self.requestline!r})")
            return False
        self.command, self.path, self.request_version = words
        fields: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = self.rfile.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("iso-8859-1").partition(":")
            key, value = name.strip().lower(), value.strip()
            fields[key] = f"{fields[key]}, {value}" if key in fields else value
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.fields = fields
        connection = fields.get("connection", "").lower()
        keep = self.request_version == "HTTP/1.1" or connection == "keep-alive"
        self.close_connection = connection == "close" or not keep
        return True

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.fields.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
        request = Recorded(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=self.fields,
            body=body,
        )
        try:
            reply = self.server.fake.answer(request)
        except Exception as exc:  # a broken route must show up as a 500, not a hung client
            reply = status(500, f"fake cluster route failed: {exc!r}")
        if reply.stream is not None:
            self.send_response(reply.code, HTTPStatus(reply.code).phrase)
            self.send_header("Content-Type", "application/json")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self._stream(reply.stream)
            return
        payload = orjson.dumps(reply.body)
        head = [
            f"{self.protocol_version} {reply.code} {HTTPStatus(reply.code).phrase}",
            f"Date: {self.date_time_string()}",
            "Content-Type: application/json",
            *(f"{name}: {value}" for name, value in reply.headers.items()),
            f"Content-Length: {len(payload)}",
        ]
        # one write, as Go's buffered writer sends a small answer: one TLS record, one segment
        self.wfile.write("\r\n".join([*head, "", ""]).encode("latin-1") + payload)

    def _stream(self, items: Iterator[Any]) -> None:
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with self.server.streams_done:
            self.server.streams += 1
        try:
            for item in items:
                line = orjson.dumps(item) + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client left
        finally:
            with self.server.streams_done:
                self.server.streams -= 1
                self.server.streams_done.notify_all()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``FakeCluster.requests`` instead."""


for _verb in ("GET", "POST", "PUT", "PATCH", "DELETE"):
    setattr(_Handler, f"do_{_verb}", _Handler._serve)  # http.server dispatches on do_<METHOD>


def running() -> Iterator[FakeCluster]:
    """A started fake for a pytest fixture: ``yield from running()``."""
    with FakeCluster() as fake:
        yield fake
