"""R3, in process: the gate's in-flight limit (429) and request timeout (504) as kube-apiserver's
max-in-flight and timeout filters answer them, on a small app whose handler the test holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import falcon
import pytest
from falcon.testing import Result, TestClient
from prometheus_client import REGISTRY

from handlers.api.errors import ApiError, not_found_path
from handlers.api.users import User
from proxy import authz, errors
from proxy.authn import ANONYMOUS, Authenticator
from proxy.deadline import RequestTimeout
from proxy.inflight import InFlightLimit, _Pool, worker_share
from proxy.middleware import Gate, RequestLog
from proxy.requestinfo import RequestInfo, parse
from proxy.settings import Settings

THINGS = "/apis/example.com/v1/things"
MASTERS = {"X-Test-User": "admin", "X-Test-Groups": "system:masters"}
ALICE = {"X-Test-User": "alice"}
TOO_MANY = "Too many requests, please try again later."
LATE = "Timeout: request did not complete within the allotted timeout"


class HeaderUsers(Authenticator):
    """Whoever the test's headers say (the real authenticators have tests of their own)."""

    def __init__(self) -> None:
        super().__init__(lambda: None, None)

    def authenticate(self, environ: Mapping[str, Any]) -> User:
        name = environ.get("HTTP_X_TEST_USER")
        groups = tuple(g for g in environ.get("HTTP_X_TEST_GROUPS", "").split(",") if g)
        return User(name, groups) if name else ANONYMOUS


class Decide:
    """Allows everyone but ``mallory``, after ``delay`` seconds (a slow review)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def authorize(self, user: User, info: RequestInfo) -> authz.Decision:
        time.sleep(self.delay)
        return authz.Decision(user.name != "mallory", "not mallory")


class Held:
    """A handler that answers only when the test lets it: a request in flight in the test's
    hands. ``entered`` counts the requests that reached it."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.go = threading.Event()
        self.calls = 0

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.calls += 1
        self.entered.release()
        self.go.wait(10)
        resp.media = {"kind": "ThingList"}

    on_post = on_get


class Slow:
    """A handler slower than the tests' deadlines, setting headers a late answer must lose."""

    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        time.sleep(self.seconds)
        resp.status = falcon.HTTP_201
        resp.set_header("ETag", '"late"')
        resp.append_header("Warning", '299 - "late"')
        resp.media = {"kind": "Thing"}


def gated(
    resource: object,
    *,
    limit: InFlightLimit | None = None,
    timeout: float = 0.0,
    authorizer: Decide | None = None,
) -> TestClient:
    gate = Gate(HeaderUsers(), authorizer or Decide(), limit=limit, timeout=RequestTimeout(timeout))
    middleware: list[Any] = [RequestLog(), gate]
    app = falcon.App(middleware=middleware)
    app.add_route(THINGS, resource)
    app.add_route("/apis/example.com/v1/watch/things", resource)
    app.add_route("/readyz", resource)
    app.add_route("/missing", Missing())
    errors.install(app)
    return TestClient(app)


class Missing:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise not_found_path()


class InFlight:
    """Requests sent from other threads, held in :class:`Held` until the block ends."""

    def __init__(self, client: TestClient, held: Held, pool: ThreadPoolExecutor) -> None:
        self._client = client
        self._held = held
        self._pool = pool

    def send(
        self, method: str, path: str, headers: Mapping[str, str] | None = None
    ) -> Future[Result]:
        """Send a request that will reach the handler (see :meth:`arrived`)."""
        return self._pool.submit(self._client.simulate_request, method, path, headers=headers)

    def arrived(self, count: int = 1) -> None:
        """Wait until ``count`` more requests are in the handler."""
        for _ in range(count):
            assert self._held.entered.acquire(timeout=10), "a request never reached the handler"


@contextmanager
def in_flight(client: TestClient, held: Held) -> Iterator[InFlight]:
    with ThreadPoolExecutor(8) as pool:
        try:
            yield InFlight(client, held, pool)
        finally:
            held.go.set()


def assert_too_many_requests(r: Result) -> None:
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    assert r.json == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": TOO_MANY,
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 1},
        "code": 429,
    }


def test_a_full_read_only_pool_answers_kubes_429_with_retry_after() -> None:
    held = Held()
    client = gated(held, limit=InFlightLimit(read_only=1, mutating=1))
    with in_flight(client, held) as requests:
        first = requests.send("GET", THINGS, ALICE)
        requests.arrived()
        assert_too_many_requests(client.simulate_get(THINGS, headers=ALICE))
    assert first.result().status_code == 200


def test_a_full_mutating_pool_answers_429_and_leaves_reads_alone() -> None:
    held = Held()
    client = gated(held, limit=InFlightLimit(read_only=1, mutating=1))
    with in_flight(client, held) as requests:
        requests.send("POST", THINGS, ALICE)
        requests.arrived()
        assert_too_many_requests(client.simulate_post(THINGS, headers=ALICE))
        read = requests.send("GET", THINGS, ALICE)
        requests.arrived()
    assert read.result().status_code == 200


def test_system_masters_is_served_over_the_limit() -> None:
    held = Held()
    client = gated(held, limit=InFlightLimit(read_only=1, mutating=1))
    with in_flight(client, held) as requests:
        requests.send("GET", THINGS, ALICE)
        requests.arrived()
        assert_too_many_requests(client.simulate_get(THINGS, headers=ALICE))
        masters = requests.send("GET", THINGS, MASTERS)
        requests.arrived()
    assert masters.result().status_code == 200


def test_watches_take_no_slot() -> None:
    held = Held()
    client = gated(held, limit=InFlightLimit(read_only=1, mutating=1))
    with in_flight(client, held) as requests:
        requests.send("GET", THINGS + "?watch=true", ALICE)
        requests.send("GET", "/apis/example.com/v1/watch/things", ALICE)
        requests.arrived(2)
        requests.send("GET", THINGS, ALICE)
        requests.arrived()
        assert_too_many_requests(client.simulate_get(THINGS, headers=ALICE))


def test_health_probes_take_no_slot() -> None:
    held = Held()
    client = gated(held, limit=InFlightLimit(read_only=1, mutating=1))
    with in_flight(client, held) as requests:
        requests.send("GET", THINGS, ALICE)
        requests.arrived()
        probe = requests.send("GET", "/readyz")
        requests.arrived()
    assert probe.result().status_code == 200


def test_slots_come_back_after_errors_and_refusals() -> None:
    client = gated(Held(), limit=InFlightLimit(read_only=1, mutating=1))
    for _ in range(3):
        denied = client.simulate_get(THINGS, headers={"X-Test-User": "mallory"})
        assert denied.json["reason"] == "Forbidden"
        missing = client.simulate_get("/missing", headers=ALICE)
        assert missing.json["reason"] == "NotFound"


def test_no_limit_admits_everything() -> None:
    held = Held()
    client = gated(held, limit=InFlightLimit(read_only=0, mutating=0))
    with in_flight(client, held) as requests:
        for method in ("GET", "POST") * 3:
            requests.send(method, THINGS, ALICE)
        requests.arrived(6)


@pytest.mark.parametrize(
    ("method", "path", "query", "pool"),
    [
        ("GET", THINGS, {}, "read_only"),
        ("GET", THINGS + "/a", {}, "read_only"),
        ("HEAD", THINGS + "/a", {}, "read_only"),
        ("GET", "/version", {}, "read_only"),
        ("HEAD", "/version", {}, "mutating"),  # kube's verb for a non-resource HEAD is "head"
        ("POST", THINGS, {}, "mutating"),
        ("PUT", THINGS + "/a", {}, "mutating"),
        ("PATCH", THINGS + "/a", {}, "mutating"),
        ("DELETE", THINGS + "/a", {}, "mutating"),
        ("DELETE", THINGS, {}, "mutating"),
    ],
)
def test_verbs_count_in_kubes_pools(
    method: str, path: str, query: dict[str, str], pool: str
) -> None:
    sizes = {"read_only": 0, "mutating": 0} | {pool: 1}
    limit = InFlightLimit(**sizes)
    info = parse(method, path, query)
    assert limit.admit(info, User("alice")) is not None
    with pytest.raises(ApiError) as refused:
        limit.admit(info, User("alice"))
    assert (refused.value.code, refused.value.message) == (429, TOO_MANY)


def test_each_worker_holds_its_share_of_the_servers_limits() -> None:
    assert worker_share(400, 2) == 200
    assert worker_share(200, 3) == 67
    assert worker_share(1, 4) == 1
    assert worker_share(0, 2) == 0
    settings = Settings.from_env(
        {"APISERVER_MAX_REQUESTS_INFLIGHT": "0", "APISERVER_MAX_MUTATING_REQUESTS_INFLIGHT": "0"}
    )
    assert InFlightLimit.for_worker(settings) is None
    assert Settings.from_env({}).max_requests_inflight == 400
    assert Settings.from_env({}).max_mutating_requests_inflight == 200


def assert_timed_out(r: Result) -> None:
    assert r.status_code == 504
    assert r.json == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": LATE,
        "reason": "Timeout",
        "code": 504,
    }


def test_a_late_answer_becomes_kubes_504_without_the_handlers_headers() -> None:
    r = gated(Slow(), timeout=0.05).simulate_get(THINGS, headers=ALICE)
    assert_timed_out(r)
    assert "ETag" not in r.headers
    assert "Warning" not in r.headers
    assert r.headers["X-Request-Id"]


def test_the_client_may_shorten_the_timeout_but_not_lengthen_it() -> None:
    assert_timed_out(gated(Slow(), timeout=60).simulate_get(THINGS + "?timeout=50ms"))
    assert_timed_out(gated(Slow(), timeout=0.05).simulate_get(THINGS + "?timeout=1m"))
    assert gated(Slow(0), timeout=60).simulate_get(THINGS + "?timeout=0s").status_code == 201


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("abc", 'time: invalid duration "abc"'),
        ("5", 'time: missing unit in duration "5"'),
        ("5d", 'time: unknown unit "d" in duration "5d"'),
    ],
)
def test_a_malformed_timeout_is_kubes_400(value: str, why: str) -> None:
    r = gated(Slow(0), timeout=60).simulate_get(THINGS, params={"timeout": value})
    assert r.status_code == 400
    assert r.json["reason"] == "BadRequest"
    assert r.json["message"] == f"invalid timeout specified in the request URL - {why}"


def test_watches_have_no_deadline() -> None:
    r = gated(Slow(), timeout=0.05).simulate_get(THINGS + "?watch=true&timeout=10ms")
    assert r.status_code == 201


def test_no_handler_starts_after_the_deadline() -> None:
    held = Held()
    client = gated(held, timeout=0.05, authorizer=Decide(delay=0.2))
    assert_timed_out(client.simulate_get(THINGS, headers=ALICE))
    assert held.calls == 0


def test_zero_means_no_request_timeout() -> None:
    assert gated(Slow(), timeout=0).simulate_get(THINGS).status_code == 201
    assert Settings.from_env({}).request_timeout_seconds == 60


def test_the_in_flight_gauge_is_the_most_used_since_the_last_report_as_kubes() -> None:
    """kube's ``apiserver_current_inflight_requests``: "Maximal number of currently used
    inflight request limit of this apiserver per request kind in last second"."""
    pool = _Pool(5, "unit-test")  # a kind of its own: no other pool writes its series

    def reported() -> float | None:
        pool.report()
        return REGISTRY.get_sample_value(
            "apiserver_current_inflight_requests", {"request_kind": "unit-test"}
        )

    for _ in range(3):
        assert pool.take()
    pool.give()
    pool.give()
    assert reported() == 3  # the peak, though one is in flight now
    assert reported() == 1  # the next period starts from what is in flight
    pool.give()
    assert reported() == 1
    assert reported() == 0
