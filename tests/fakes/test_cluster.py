"""The fake kube-apiserver over real TLS, driven with plain ``requests`` rather than this
server's client (the fake exists to check that client, so its tests do not lean on it): the
authentication ConfigMap and the reviews (contract A2, A5, A7), and its Tasks and Events where
``tests/fakes/test_objects.py`` leaves off: the label grammar, Events' field selectors, the
finalizer flow as a watch sees it, timeouts, and the hooks that break the cluster on purpose
(``fail``, ``slow``, ``down``, ``cut_connections``, ``count``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import yaml

from tests.fakes.cluster import Call, FakeCluster, Reply
from tests.fakes.objects import EVENTS, TASKS

TASKS_PATH = "/apis/example.example.com/v1"
TASK_LISTS = rf"{TASKS_PATH}(/namespaces/[^/]+)?/tasks"
EVENT_LISTS = r"/api/v1(/namespaces/[^/]+)?/events"
FINALIZER = "example.example.com/finalizer"
CONFIGMAP = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"
GROUPS = {"TokenReview": "authentication.k8s.io", "SubjectAccessReview": "authorization.k8s.io"}


def client(fake: FakeCluster) -> requests.Session:
    """A session that trusts the fake's CA only and sends its token."""
    session = requests.Session()
    session.trust_env = False
    session.verify = fake.ca_file
    session.headers["Authorization"] = f"Bearer {fake.token}"
    return session


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    with FakeCluster() as running:
        yield running


@pytest.fixture
def http(fake: FakeCluster) -> Iterator[requests.Session]:
    with client(fake) as session:
        yield session


def review(
    http: requests.Session,
    fake: FakeCluster,
    kind: str,
    spec: dict[str, Any],
    timeout: float | None = None,
) -> requests.Response:
    """POST a TokenReview or SubjectAccessReview with ``spec``, as kube's clients send one."""
    group = GROUPS[kind]
    body = {"apiVersion": f"{group}/v1", "kind": kind, "spec": spec}
    return http.post(f"{fake.url}/apis/{group}/v1/{kind.lower()}s", json=body, timeout=timeout)


def test_a2_configmap(fake: FakeCluster, http: requests.Session) -> None:
    fake.configmap = {"requestheader-allowed-names": '["front-proxy-client"]'}
    found = http.get(f"{fake.url}{CONFIGMAP}")
    assert found.status_code == 200 and found.json()["data"] == fake.configmap
    assert found.json()["metadata"]["namespace"] == "kube-system"
    fake.configmap = None
    missing = http.get(f"{fake.url}{CONFIGMAP}")
    assert (missing.status_code, missing.json()["reason"]) == (404, "NotFound")
    other = http.get(f"{fake.url}/api/v1/namespaces/default/configmaps/other")
    assert other.status_code == 404
    assert other.json()["message"] == 'configmaps "other" not found'


def test_a5_token_review(fake: FakeCluster, http: requests.Session) -> None:
    alice = {"username": "alice", "uid": "1", "groups": ["devs"], "extra": {"k": ["v"]}}
    fake.tokens["alice-token"] = alice
    known = review(http, fake, "TokenReview", {"token": "alice-token", "audiences": ["api"]})
    assert known.status_code == 201
    assert known.json()["status"] == {"authenticated": True, "user": alice, "audiences": ["api"]}
    unknown = review(http, fake, "TokenReview", {"token": "nobody"}).json()["status"]
    assert not unknown.get("authenticated")
    assert unknown["user"] == {}
    assert [r["spec"]["token"] for r in fake.reviews("tokenreviews")] == ["alice-token", "nobody"]


def test_a7_subject_access_review(fake: FakeCluster, http: requests.Session) -> None:
    spec: dict[str, Any] = {
        "user": "alice",
        "groups": ["system:authenticated"],
        "resourceAttributes": {"verb": "get", "resource": "customtasks", "namespace": "n"},
    }
    assert review(http, fake, "SubjectAccessReview", spec).json()["status"] == {"allowed": False}
    fake.decide = lambda s: (s["user"] == "alice", "RBAC: allowed by test")
    assert review(http, fake, "SubjectAccessReview", spec).json()["status"] == {
        "allowed": True,
        "reason": "RBAC: allowed by test",
    }
    assert (
        fake.reviews()
        == [{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}]
        * 2
    )


def test_a7_subject_access_review_is_validated_like_kube(
    fake: FakeCluster, http: requests.Session
) -> None:
    refused = review(http, fake, "SubjectAccessReview", {"resourceAttributes": {"verb": "get"}})
    assert refused.status_code == 422
    assert "at least one of user or group must be specified" in refused.json()["message"]


def test_requests_are_recorded(fake: FakeCluster, http: requests.Session) -> None:
    http.get(f"{fake.url}{CONFIGMAP}", params={"resourceVersion": "0"})
    [recorded] = fake.requests
    assert recorded.method == "GET"
    assert recorded.path == CONFIGMAP
    assert recorded.query == {"resourceVersion": "0"}
    assert recorded.headers["authorization"] == f"Bearer {fake.token}"
    assert recorded.body is None


def test_kubeconfig_names_the_fake(fake: FakeCluster, tmp_path: Path) -> None:
    config = yaml.safe_load(fake.kubeconfig(tmp_path).read_text())  # a directory: a file in it
    assert (tmp_path / "kubeconfig").is_file()
    (cluster,) = config["clusters"]
    assert cluster["cluster"] == {"server": fake.url, "certificate-authority": fake.ca_file}
    assert config["users"] == [{"name": "fake", "user": {"token": fake.token}}]
    assert config["current-context"] == "fake"
    assert fake.kubeconfig(tmp_path / "other.yaml") == tmp_path / "other.yaml"


def test_wrong_token_is_unauthorized(fake: FakeCluster, http: requests.Session) -> None:
    intruder = http.get(f"{fake.url}{CONFIGMAP}", headers={"Authorization": "Bearer guess"})
    assert intruder.status_code == 401
    assert intruder.json()["reason"] == "Unauthorized"


def test_an_unknown_ca_is_refused(fake: FakeCluster) -> None:
    """The fake's certificate verifies against its own CA (``ca_file``) only."""
    with requests.Session() as stranger:
        stranger.trust_env = False
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            stranger.get(
                f"{fake.url}{CONFIGMAP}", headers={"Authorization": f"Bearer {fake.token}"}
            )


@pytest.mark.parametrize("code", [403, 500, 503])
def test_failure(fake: FakeCluster, http: requests.Session, code: int) -> None:
    fake.failure = code
    failed = review(http, fake, "SubjectAccessReview", {"user": "a", "nonResourceAttributes": {}})
    assert failed.status_code == code
    assert failed.json()["kind"] == "Status"
    assert failed.json()["code"] == code
    assert review(http, fake, "TokenReview", {"token": "t"}).status_code == code
    configmap = http.get(f"{fake.url}{CONFIGMAP}")  # failure is for reviews only
    assert (configmap.status_code, configmap.json()["data"]) == (200, {})
    fake.failure = None
    assert review(http, fake, "TokenReview", {"token": "t"}).json()["status"]["user"] == {}


def test_delay_and_timeout(fake: FakeCluster, http: requests.Session) -> None:
    fake.delay = 0.5
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        review(http, fake, "TokenReview", {"token": "t"}, timeout=0.1)
    assert time.monotonic() - started < 0.45
    answered = review(http, fake, "TokenReview", {"token": "t"}, timeout=5)
    assert answered.json()["status"]["user"] == {}


def test_concurrent_reviews_are_answered_in_parallel(fake: FakeCluster) -> None:
    """Many callers at once (as a threaded server's workers), each with its own answer."""
    fake.delay = 0.2
    fake.decide = lambda spec: (spec["user"].endswith("0"), "")
    results: dict[str, bool] = {}

    def ask(user: str) -> None:
        spec = {"user": user, "nonResourceAttributes": {"path": "/", "verb": "get"}}
        with client(fake) as http:
            status = review(http, fake, "SubjectAccessReview", spec).json()["status"]
        results[user] = bool(status.get("allowed"))

    users = [f"user-{i}" for i in range(20)]
    threads = [threading.Thread(target=ask, args=(user,)) for user in users]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 0.2 * 20 / 4
    assert results == {user: user.endswith("0") for user in users}
    assert len(fake.reviews()) == 20


def test_routes_can_be_added(fake: FakeCluster, http: requests.Session) -> None:
    def version(call: Call) -> Reply:
        return Reply(200, {"major": "1", "minor": "33", "query": call.request.query})

    fake.route("GET", "/version", version)
    got = http.get(f"{fake.url}/version", params={"a": "b"})
    assert got.json() == {"major": "1", "minor": "33", "query": {"a": "b"}}
    assert http.post(f"{fake.url}/version", json={}).status_code == 405


# -- Tasks and Events ------------------------------------------------------------------------


def task(name: str, namespace: str = "ns", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"priority": 1, "deadline": "2026-01-01T00:00:00Z"},
    }


def names(listing: requests.Response) -> list[str]:
    assert listing.status_code == 200, listing.text
    return [item["metadata"]["name"] for item in listing.json()["items"]]


def events(response: requests.Response, count: int) -> list[tuple[str, str]]:
    """The next ``count`` watch events as (type, name), read as they arrive."""
    seen: list[tuple[str, str]] = []
    for line in response.iter_lines(chunk_size=1):
        if line:
            event = orjson.loads(line)
            seen.append((event["type"], event["object"]["metadata"].get("name", "")))
        if len(seen) == count:
            break
    return seen


def test_r5_label_selector_grammar(fake: FakeCluster, http: requests.Session) -> None:
    fake.objects.put(TASKS, task("web", tier="web", track="stable"))
    fake.objects.put(TASKS, task("db", tier="db"))
    fake.objects.put(TASKS, task("bare"))
    url = f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks"
    expected = {
        "tier=web": ["web"],
        "tier==db": ["db"],
        "tier!=web": ["bare", "db"],  # a missing label is "not web"
        "tier in (db, web)": ["db", "web"],
        "tier notin (web)": ["bare", "db"],
        "tier": ["db", "web"],
        "!tier": ["bare"],
        "tier,track=stable": ["web"],
        "": ["bare", "db", "web"],
    }
    for selector, wanted in expected.items():
        assert names(http.get(url, params={"labelSelector": selector})) == wanted, selector


def test_r5_event_field_selectors(fake: FakeCluster, http: requests.Session) -> None:
    owner = fake.objects.put(TASKS, task("owner"))
    uid = owner["metadata"]["uid"]
    for name, reason, about in (("e1", "TaskCreated", uid), ("e2", "TaskUpdated", "other-uid")):
        fake.objects.put(
            EVENTS,
            {
                "metadata": {"name": name, "namespace": "ns"},
                "involvedObject": {"kind": "Task", "name": "owner", "uid": about},
                "reason": reason,
            },
        )
    url = f"{fake.url}/api/v1/events"
    assert names(http.get(url, params={"fieldSelector": f"involvedObject.uid={uid}"})) == ["e1"]
    assert names(http.get(url, params={"fieldSelector": "reason!=TaskCreated"})) == ["e2"]
    both = "involvedObject.name=owner,metadata.namespace=ns"
    assert names(http.get(url, params={"fieldSelector": both})) == ["e1", "e2"]
    refused = http.get(url, params={"fieldSelector": "count=1"})
    assert refused.status_code == 400
    assert refused.json()["reason"] == "BadRequest"
    assert refused.json()["message"] == "field label not supported: count"


def test_r3_update_conflict_wording(fake: FakeCluster, http: requests.Session) -> None:
    stale = fake.objects.put(TASKS, task("a"))
    url = f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks/a"
    assert (
        http.put(url, json={**stale, "spec": {"priority": 2}}).json()["metadata"]["generation"] == 2
    )
    conflict = http.put(url, json=stale)
    assert conflict.status_code == 409
    assert conflict.json()["message"] == (
        'Operation cannot be fulfilled on tasks.example.example.com "a": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )


def test_delete_with_a_finalizer_is_modified_then_deleted_on_a_watch(
    fake: FakeCluster, http: requests.Session
) -> None:
    held = task("held")
    held["metadata"]["finalizers"] = [FINALIZER]
    created = fake.objects.put(TASKS, held)
    fake.objects.put(TASKS, task("free"))
    watch = http.get(
        f"{fake.url}{TASKS_PATH}/tasks",
        params={"watch": "true", "resourceVersion": created["metadata"]["resourceVersion"]},
        stream=True,
    )
    url = f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks"
    deleting = http.delete(f"{url}/held")
    assert deleting.status_code == 200 and deleting.json()["metadata"]["deletionTimestamp"]
    assert http.get(f"{url}/held").json()["metadata"]["finalizers"] == [FINALIZER]
    released = http.patch(
        f"{url}/held",
        data=orjson.dumps({"metadata": {"finalizers": None}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert released.status_code == 200
    assert http.delete(f"{url}/free").status_code == 200  # no finalizer: gone at once
    assert events(watch, 4) == [
        ("ADDED", "free"),
        ("MODIFIED", "held"),
        ("DELETED", "held"),
        ("DELETED", "free"),
    ]
    assert names(http.get(url)) == []


def test_r6_watch_is_cluster_wide_and_ends_at_its_timeout(
    fake: FakeCluster, http: requests.Session
) -> None:
    fake.objects.bookmark_seconds = 0.1
    fake.objects.put(TASKS, task("a", "one"))
    started = time.monotonic()
    watch = http.get(
        f"{fake.url}{TASKS_PATH}/tasks",
        params={"watch": "1", "timeoutSeconds": "1", "allowWatchBookmarks": "true"},
        stream=True,
    )
    assert watch.headers["Transfer-Encoding"] == "chunked"
    fake.objects.put(TASKS, task("b", "two"))
    seen = [orjson.loads(line) for line in watch.iter_lines() if line]  # the last chunk ends it
    assert 1 <= time.monotonic() - started < 2
    assert [(e["type"], e["object"]["metadata"]["namespace"]) for e in seen[:2]] == [
        ("ADDED", "one"),
        ("ADDED", "two"),
    ]
    bookmark = next(e["object"] for e in seen if e["type"] == "BOOKMARK")
    assert bookmark == {
        "kind": "Task",
        "apiVersion": "example.example.com/v1",
        "metadata": {"resourceVersion": "2"},
    }


# -- counting and breaking the cluster -------------------------------------------------------


def test_count_tells_lists_from_watches(fake: FakeCluster, http: requests.Session) -> None:
    http.get(f"{fake.url}{TASKS_PATH}/tasks")
    http.get(f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks", params={"labelSelector": "a"})
    http.get(f"{fake.url}/api/v1/namespaces/ns/events")
    http.get(f"{fake.url}{TASKS_PATH}/tasks", params={"watch": "1", "timeoutSeconds": "0"})
    assert fake.count("GET", TASK_LISTS) == 3
    assert fake.count("GET", TASK_LISTS, watch=False) == 2
    assert fake.count("GET", TASK_LISTS, watch=True) == 1
    assert fake.count("GET", EVENT_LISTS, watch=False) == 1
    assert fake.count("POST", EVENT_LISTS) == 0


def test_fail_answers_one_resource_as_kube_would(fake: FakeCluster, http: requests.Session) -> None:
    fake.fail["events"] = 403
    listing = http.get(f"{fake.url}/api/v1/namespaces/ns/events")
    assert listing.status_code == 403
    assert listing.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'events is forbidden: User "system:serviceaccount:default:fake" cannot list '
        'resource "events" in API group "" in the namespace "ns"',
        "reason": "Forbidden",
        "details": {"kind": "events"},
        "code": 403,
    }
    watch = http.get(f"{fake.url}/api/v1/events", params={"watch": "true"})
    assert "cannot watch resource" in watch.json()["message"]
    assert "at the cluster scope" in watch.json()["message"]
    assert http.get(f"{fake.url}{TASKS_PATH}/tasks").status_code == 200
    fake.fail["tasks"] = 429
    busy = http.get(f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks/a")
    assert (busy.status_code, busy.headers["Retry-After"]) == (429, "1")
    assert busy.json()["reason"] == "TooManyRequests"
    fake.fail.clear()
    assert http.get(f"{fake.url}/api/v1/events").status_code == 200
    assert fake.count("GET", EVENT_LISTS) == 3  # failed requests are recorded too


def test_slow_delays_one_resource(fake: FakeCluster, http: requests.Session) -> None:
    fake.slow["tasks"] = 0.3
    started = time.monotonic()
    http.get(f"{fake.url}/api/v1/events")
    assert time.monotonic() - started < 0.25
    http.get(f"{fake.url}{TASKS_PATH}/tasks")
    assert time.monotonic() - started >= 0.3


def test_cut_connections_drops_a_watch_mid_stream(
    fake: FakeCluster, http: requests.Session
) -> None:
    fake.objects.put(TASKS, task("a"))
    watch = http.get(f"{fake.url}{TASKS_PATH}/tasks", params={"watch": "true"}, stream=True)
    lines = watch.iter_lines(chunk_size=1)  # one reader: leaving one closes the response
    assert orjson.loads(next(lines))["type"] == "ADDED"
    fake.cut_connections()
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="ended prematurely"):
        for _ in lines:
            pass
    assert names(http.get(f"{fake.url}{TASKS_PATH}/tasks")) == ["a"]  # a new connection


def test_down_refuses_every_connection_until_up(fake: FakeCluster, http: requests.Session) -> None:
    assert http.get(f"{fake.url}/api/v1/events").status_code == 200  # a pooled connection
    fake.down = True
    with pytest.raises(requests.ConnectionError):
        http.get(f"{fake.url}/api/v1/events")
    fake.down = False
    assert http.get(f"{fake.url}/api/v1/events").status_code == 200


def test_stop_ends_an_open_watch_with_its_last_chunk() -> None:
    fake = FakeCluster().start()
    http = requests.Session()
    http.trust_env = False
    watch = http.get(
        f"{fake.url}/api/v1/events",
        params={"watch": "true"},
        headers={"Authorization": f"Bearer {fake.token}"},
        verify=fake.ca_file,
        stream=True,
    )
    ended = threading.Event()

    def read() -> None:
        for _ in watch.iter_lines():
            pass
        ended.set()  # reached only through the terminating chunk: a cut raises instead

    threading.Thread(target=read, daemon=True).start()
    fake.stop()
    assert ended.wait(5)
    http.close()


# -- patches and lists as kube answers them ----------------------------------------------------


MERGE = {"Content-Type": "application/merge-patch+json"}


def test_merge_patch_with_a_stale_resource_version_is_a_conflict(
    fake: FakeCluster, http: requests.Session
) -> None:
    stale = fake.objects.put(TASKS, task("a"))
    fake.objects.update(TASKS, "ns", "a", {**stale, "spec": {"priority": 2}})
    version = stale["metadata"]["resourceVersion"]
    patch = {"metadata": {"labels": {"x": "y"}, "resourceVersion": version}}
    url = f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks/a"
    assert http.patch(url, data=orjson.dumps(patch), headers=MERGE).status_code == 409


def test_json_patch(fake: FakeCluster, http: requests.Session) -> None:
    fake.objects.put(TASKS, task("a"))
    patch = [{"op": "add", "path": "/metadata/labels/x", "value": "y"}]
    patched = http.patch(
        f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks/a",
        data=orjson.dumps(patch),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert (patched.status_code, patched.json()["metadata"]["labels"]) == (200, {"x": "y"})


def test_strategic_merge_patch_of_a_custom_resource_is_415(
    fake: FakeCluster, http: requests.Session
) -> None:
    fake.objects.put(TASKS, task("a"))
    refused = http.patch(
        f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks/a",
        data=b"{}",
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert refused.status_code == 415
    assert refused.json()["reason"] == "UnsupportedMediaType"


def test_core_list_items_have_no_kind(fake: FakeCluster, http: requests.Session) -> None:
    fake.objects.put(EVENTS, {"metadata": {"name": "e", "namespace": "ns"}, "reason": "R"})
    (item,) = http.get(f"{fake.url}/api/v1/events").json()["items"]
    assert "kind" not in item and "apiVersion" not in item


def test_apply_merges_and_unknown_media_types_are_415(
    fake: FakeCluster, http: requests.Session
) -> None:
    fake.objects.put(TASKS, task("a", tier="web"))
    fake.objects.put(EVENTS, {"metadata": {"name": "e", "namespace": "ns"}, "reason": "R"})
    url = f"{fake.url}{TASKS_PATH}/namespaces/ns/tasks"
    applied = http.patch(
        f"{url}/a",
        data=orjson.dumps({"metadata": {"labels": {"x": "y"}}}),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert applied.status_code == 200, applied.text
    assert applied.json()["metadata"]["labels"] == {"tier": "web", "x": "y"}
    assert http.patch(f"{url}/a", json={"spec": {}}).status_code == 415  # application/json
    strategic = {"Content-Type": "application/strategic-merge-patch+json"}
    assert http.patch(f"{url}/none", data=b"{}", headers=strategic).status_code == 415  # not 404
    event = http.patch(
        f"{fake.url}/api/v1/namespaces/ns/events/e", data=b'{"reason": "S"}', headers=strategic
    )
    assert (event.status_code, event.json()["reason"]) == (200, "S")  # core kinds take it


def test_a_bad_label_selector_is_400(fake: FakeCluster, http: requests.Session) -> None:
    refused = http.get(f"{fake.url}/api/v1/events", params={"labelSelector": "a in (b"})
    assert (refused.status_code, refused.json()["reason"]) == (400, "BadRequest")
    assert (
        refused.json()["message"] == "unable to parse requirement: found '', expected: ',' or ')'"
    )
    watch = http.get(f"{fake.url}/api/v1/events", params={"watch": "1", "labelSelector": "a,"})
    assert watch.status_code == 400  # refused before the watch starts
