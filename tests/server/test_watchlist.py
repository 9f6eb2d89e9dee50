"""R6 WatchList: a watch with ``sendInitialEvents=true`` over the real server, read the way
client-go's reflector reads it (kube 1.35's WatchListClient, on by default): every object as
ADDED, the BOOKMARK annotated ``k8s.io/initial-events-end`` at the state's resourceVersion,
then the changes after it; in every output form, with selectors, in one namespace or all."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
import requests

from store import New
from store.sqlite import SQLiteStore
from tests.server.test_watch import GV, TABLE, create
from tests.support.servers import Server, run_server

METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
FORMS = {"json": "application/json", "table": TABLE, "metadata": METADATA}
END = "k8s.io/initial-events-end"
WATCH_LIST = {
    "watch": "1",
    "sendInitialEvents": "true",
    "resourceVersionMatch": "NotOlderThan",
    "allowWatchBookmarks": "true",
}
NO_INITIAL_EVENTS = {
    "watch": "1",
    "sendInitialEvents": "false",
    "resourceVersionMatch": "NotOlderThan",
}


class Stream:
    """A watch read line by line, as a reflector reads it."""

    def __init__(self, session: requests.Session, url: str, accept: str, **params: str) -> None:
        params.setdefault("timeoutSeconds", "10")  # the server ends it, should a test fail
        self.response = session.get(
            url, params=params, headers={"Accept": accept}, stream=True, timeout=30
        )
        assert self.response.status_code == 200, self.response.text
        self._lines = (line for line in self.response.iter_lines() if line)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        event: dict[str, Any] = orjson.loads(next(self._lines))
        return event

    def until_end_bookmark(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The initial events and the BOOKMARK that ends them."""
        initial: list[dict[str, Any]] = []
        for event in self:
            if event["type"] == "BOOKMARK" and END in annotations_of(event["object"]):
                return initial, event["object"]
            initial.append(event)
        raise AssertionError(f"the stream ended without the bookmark after {initial}")

    def close(self) -> None:
        self.response.close()


def metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """An event object's metadata, in whichever form it came (a Table row's object)."""
    if obj["kind"] == "Table":
        (row,) = obj["rows"]
        found: dict[str, Any] = row["object"]["metadata"]
        return found
    found = obj["metadata"]
    return found


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict(metadata(obj).get("annotations") or {})


def names(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (e["type"], metadata(e["object"]).get("namespace", ""), metadata(e["object"])["name"])
        for e in events
    ]


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return f"wl-{zlib.crc32(request.node.name.encode()):08x}"  # one namespace per test


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("scope", ["namespace", "all"])
def test_r6_watch_list_initial_events_bookmark_then_changes(
    server: Server, prefix: str, form: str, scope: str
) -> None:
    s = server.session()
    group = f"{prefix}-{form}-{scope}"
    url_a = f"{server.url}{GV}/namespaces/{group}-a/customtasks"
    url_b = f"{server.url}{GV}/namespaces/{group}-b/customtasks"
    create(s, url_a, "one", team=group)
    create(s, url_a, "two", team=group)
    create(s, url_a, "other", team="elsewhere")
    create(s, url_b, "three", team=group)
    url = url_a if scope == "namespace" else f"{server.url}{GV}/customtasks"
    # both selectors: the label picks this test's objects, the field leaves one out
    selectors = {"labelSelector": f"team={group}", "fieldSelector": "metadata.name!=two"}

    stream = Stream(s, url, FORMS[form], **WATCH_LIST, **selectors)
    initial, end = stream.until_end_bookmark()
    expected = [("ADDED", f"{group}-a", "one")]
    if scope == "all":
        expected.append(("ADDED", f"{group}-b", "three"))
    assert names(initial) == expected
    revision = int(metadata(end)["resourceVersion"])
    assert revision >= max(int(metadata(e["object"])["resourceVersion"]) for e in initial)
    assert annotations_of(end) == {END: "true"}
    assert (
        end["kind"]
        == {"json": "CustomTask", "table": "Table", "metadata": "PartialObjectMetadata"}[form]
    )
    if form == "table":  # the first event of a Table watch carries the columns, no other
        assert "columnDefinitions" in initial[0]["object"]
        assert "columnDefinitions" not in end
        assert end["rows"][0]["object"]["kind"] == "PartialObjectMetadata"

    created = create(s, url_a, "four", team=group)
    create(s, url_a, "ignored", team="elsewhere")
    changed = next(e for e in stream if e["type"] != "BOOKMARK")
    stream.close()
    assert names([changed]) == [("ADDED", f"{group}-a", "four")]
    assert int(metadata(changed["object"])["resourceVersion"]) > revision
    assert metadata(changed["object"])["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_r6_watch_list_of_cluster_scoped_kind_from_a_resource_version(server: Server) -> None:
    """A reflector that has listed before asks for a state not older than its revision."""
    s = server.session()
    url = f"{server.url}{GV}/clustertasks"
    made = create(s, url, "wl-cluster-one", purpose="watchlist")
    version = made["metadata"]["resourceVersion"]
    stream = Stream(
        s,
        url,
        "application/json",
        **WATCH_LIST,
        resourceVersion=version,
        labelSelector="purpose=watchlist",
    )
    initial, end = stream.until_end_bookmark()
    stream.close()
    assert names(initial) == [("ADDED", "", "wl-cluster-one")]
    assert int(end["metadata"]["resourceVersion"]) >= int(version)
    assert end["kind"] == "ClusterTask"


def test_r6_watch_list_without_bookmarks_sends_no_end_bookmark(server: Server, prefix: str) -> None:
    """kube sends the initial-events-end BOOKMARK only to a watch that allows bookmarks."""
    s = server.session()
    url = f"{server.url}{GV}/namespaces/{prefix}/customtasks"
    create(s, url, "one")
    params = {k: v for k, v in WATCH_LIST.items() if k != "allowWatchBookmarks"}
    stream = Stream(s, url, "application/json", **params)
    assert names([next(stream)]) == [("ADDED", prefix, "one")]
    create(s, url, "two")
    assert names([next(stream)]) == [("ADDED", prefix, "two")]
    stream.close()


@pytest.mark.parametrize("version", ["", "0"])
def test_r6_send_initial_events_false_watches_from_now(
    server: Server, prefix: str, version: str
) -> None:
    """``sendInitialEvents=false`` with ``""`` or ``"0"``: no starting state, the changes from
    now (kube's watch cache starts at its current revision)."""
    s = server.session()
    url = f"{server.url}{GV}/namespaces/{prefix}/customtasks"
    create(s, url, "before")
    stream = Stream(s, url, "application/json", **NO_INITIAL_EVENTS, resourceVersion=version)
    create(s, url, "after")
    assert names([next(stream)]) == [("ADDED", prefix, "after")]
    stream.close()


def test_r6_send_initial_events_false_replays_from_a_resource_version(
    server: Server, prefix: str
) -> None:
    s = server.session()
    url = f"{server.url}{GV}/namespaces/{prefix}/customtasks"
    first = create(s, url, "first")
    create(s, url, "second")
    version = first["metadata"]["resourceVersion"]
    stream = Stream(s, url, "application/json", **NO_INITIAL_EVENTS, resourceVersion=version)
    assert names([next(stream)]) == [("ADDED", prefix, "second")]
    stream.close()


def test_r6_watch_list_from_a_future_revision_ends_with_kubes_504(server: Server) -> None:
    """kube's watch cache cannot reach the revision: the watch's one event is the ERROR."""
    s = server.session()
    url = f"{server.url}{GV}/clustertasks"
    current = int(s.get(url, params={"limit": "1"}).json()["metadata"]["resourceVersion"])
    wanted = current + 1_000_000
    stream = Stream(s, url, "application/json", **WATCH_LIST, resourceVersion=str(wanted))
    events = list(stream)
    assert [e["type"] for e in events] == ["ERROR"]
    status = events[0]["object"]
    assert (status["code"], status["reason"]) == (504, "Timeout")
    assert status["message"].startswith(f"Too large resource version: {wanted}, current: ")
    assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


INVALID = 'ListOptions.meta.k8s.io "" is invalid: '
REQUIRES = (
    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch "
    "to NotOlderThan"
)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"watch": "1", "sendInitialEvents": "true"}, REQUIRES),
        ({"watch": "1", "sendInitialEvents": "false"}, REQUIRES),
        (
            {"watch": "1", "sendInitialEvents": "true", "resourceVersionMatch": "Exact"},
            f'[{REQUIRES}, resourceVersionMatch: Unsupported value: "Exact": supported values: '
            '"NotOlderThan"]',
        ),
        (
            {"watch": "1", "resourceVersionMatch": "NotOlderThan"},
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
            "sendInitialEvents is provided",
        ),
        (
            {
                "sendInitialEvents": "true",
                "resourceVersionMatch": "NotOlderThan",
                "resourceVersion": "1",
            },
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
        ),
    ],
)
def test_r3_watch_list_options_refused_in_kubes_words(
    server: Server, params: dict[str, str], message: str
) -> None:
    r = server.session().get(f"{server.url}{GV}/clustertasks", params=params, timeout=10)
    assert (r.status_code, r.json()["reason"]) == (422, "Invalid"), r.text
    assert r.json()["message"] == INVALID + message


def test_r6_python_client_list_then_watch_is_unaffected(server: Server, prefix: str) -> None:
    """The ``kubernetes`` package's list+watch (no sendInitialEvents) works as before."""
    from kubernetes import client, config, watch

    api = client.CustomObjectsApi(
        config.new_client_from_config(config_file=server.kubeconfig())  # type: ignore[no-untyped-call]
    )
    group, version = GV.removeprefix("/apis/").split("/")
    url = f"{server.url}{GV}/namespaces/{prefix}/customtasks"
    s = server.session()
    create(s, url, "listed")
    listed = cast(
        dict[str, Any], api.list_namespaced_custom_object(group, version, prefix, "customtasks")
    )
    assert [item["metadata"]["name"] for item in listed["items"]] == ["listed"]
    stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
        api.list_namespaced_custom_object,
        group,
        version,
        prefix,
        "customtasks",
        resource_version=listed["metadata"]["resourceVersion"],
        timeout_seconds=10,
    )
    create(s, url, "watched")
    event = next(stream)
    stream.close()
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "watched")


def test_r6_a_watch_list_of_100000_objects_streams_in_bounded_memory(tmp_path: Path) -> None:
    """The starting state streams from the store page by page: the worker's resident memory
    grows by far less than the ~100 MB the objects would take held at once.

    Its private (anonymous) resident memory is what is measured: the SQLite store maps its
    file, so the pages a read touches count in VmRSS too (about the database's size, 200 MB
    here), though they are the kernel's page cache, shared and given back under pressure."""
    count, details = 100_000, "x" * 700  # ~1 kB an object as served
    store = SQLiteStore(str(tmp_path / "store.db"))  # the file the server below opens
    for start in range(0, count, 10_000):
        store.load(
            "customtasks",
            [
                New("big", name, _stored(name, details), {})
                for name in (f"t-{n:06d}" for n in range(start, start + 10_000))
            ],
        )
    store.close()
    with run_server(tmp_path, workers=1) as server:
        s = server.session()
        url = f"{server.url}{GV}/namespaces/big/customtasks"
        master = server.process.pid
        (worker,) = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        small = Stream(
            s, url, "application/json", **WATCH_LIST, fieldSelector="metadata.name=t-000001"
        )
        assert names(small.until_end_bookmark()[0]) == [("ADDED", "big", "t-000001")]
        small.close()  # the code paths are warm: what grows now is what the stream holds
        before = _rss(worker)
        response = s.get(
            url, params={**WATCH_LIST, "timeoutSeconds": "60"}, stream=True, timeout=60
        )
        added, peak, last = 0, before, b""
        for line in response.iter_lines(chunk_size=1 << 16):
            if line.startswith(b'{"type":"ADDED"'):
                added += 1
                if added % 10_000 == 0:
                    peak = max(peak, _rss(worker))
            elif line:
                last = line
                break
        peak = max(peak, _rss(worker))
        response.close()
    assert added == count
    end = orjson.loads(last)
    assert (end["type"], annotations_of(end["object"])) == ("BOOKMARK", {END: "true"})
    assert peak - before < 50 << 20, f"RSS grew {(peak - before) >> 20} MB"


def _stored(name: str, details: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "big",
            "uid": str(uuid.uuid4()),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "generation": 1,
        },
        "apiVersion": GV.removeprefix("/apis/"),
        "kind": "CustomTask",
        "spec": {"priority": 1, "deadline": "2026-01-01T00:00:00Z", "details": details},
    }


def _rss(pid: str) -> int:
    """A process's private resident memory in bytes (RssAnon: VmRSS without mapped files)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) << 10
    raise AssertionError(f"no RssAnon for {pid}")
