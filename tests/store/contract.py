"""Behaviours every :class:`store.Store` engine must show, written once, run per engine.

Each check takes a store on an empty database (or a way to open one) and asserts through the
public interface only; engine test modules call them and add what is engine-specific.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from store import AlreadyExists, Conflict, Expired, NotFound, Store


def obj(name: str, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"n": name}}


def every_write_takes_the_next_revision_and_is_logged(store: Store) -> None:
    a = store.create("r", "ns", "a", obj("a"), {})
    b = store.create("r", "ns", "b", obj("b"), {})
    a2 = store.update("r", "ns", "a", a.revision, obj("a", x="1"), {})
    gone = store.delete("r", "ns", "b", b.revision)
    assert [a.revision, b.revision, a2.revision, gone.revision] == [1, 2, 3, 4]
    assert store.revision() == 4
    assert orjson.loads(a2.body)["metadata"]["resourceVersion"] == "3"
    assert orjson.loads(gone.body)["metadata"]["resourceVersion"] == "4"

    changes, compacted = store.changes(0)
    assert compacted == 0
    assert [(c.revision, c.type, c.row.name) for c in changes] == [
        (1, "ADDED", "a"),
        (2, "ADDED", "b"),
        (3, "MODIFIED", "a"),
        (4, "DELETED", "b"),
    ]
    added, _, modified, deleted = changes
    assert added.previous is None
    assert modified.row.labels() == {"x": "1"}
    assert modified.previous is not None and modified.previous.labels() == {}
    assert orjson.loads(modified.previous.body)["metadata"]["resourceVersion"] == "3"
    assert deleted.previous is not None and deleted.row.body == deleted.previous.body
    assert [c.revision for c in store.changes(2, limit=1)[0]] == [3]
    assert store.changes(4) == ([], 0)


def changes_can_be_read_for_one_resource(store: Store) -> None:
    store.create("r", "ns", "a", obj("a"), {})
    store.create("other", "ns", "a", obj("a"), {})
    store.create("r", "", "b", obj("b"), {})
    changes, _ = store.changes(0, resource="r")
    assert [(c.resource, c.revision) for c in changes] == [("r", 1), ("r", 3)]


def optimistic_concurrency(store: Store) -> None:
    a = store.create("r", "", "a", obj("a"), {})
    with pytest.raises(AlreadyExists):
        store.create("r", "", "a", obj("a"), {})
    store.update("r", "", "a", a.revision, obj("a", v="2"), {})
    with pytest.raises(Conflict):
        store.update("r", "", "a", a.revision, obj("a", v="3"), {})
    with pytest.raises(Conflict):
        store.delete("r", "", "a", a.revision)
    with pytest.raises(NotFound):
        store.delete("r", "", "missing", 1)
    with pytest.raises(NotFound):
        store.update("r", "", "missing", 1, obj("missing"), {})
    assert store.revision() == 2  # failed writes burn no revision
    assert [c.revision for c in store.changes(0)[0]] == [1, 2]


def get_returns_the_stored_row(store: Store) -> None:
    assert store.get("r", "ns", "a") is None
    store.create("r", "ns", "a", obj("a", tier="web"), {"spec.n": "a"})
    row = store.get("r", "ns", "a")
    assert row is not None
    assert (row.namespace, row.name, row.revision) == ("ns", "a", 1)
    assert row.labels() == {"tier": "web"} and row.fields() == {"spec.n": "a"}
    assert orjson.loads(row.body) == {
        "metadata": {"resourceVersion": "1", "name": "a", "labels": {"tier": "web"}},
        "spec": {"n": "a"},
    }
    assert store.get("r", "other", "a") is None and store.get("q", "ns", "a") is None


def list_is_in_byte_order_and_scoped(store: Store) -> None:
    for ns, name in [("b", "x"), ("a", "b"), ("a", "B"), ("a", "_"), ("", "c")]:
        store.create("r", ns, name, obj(name), {})
    store.create("q", "a", "unrelated", obj("unrelated"), {})
    everything = store.list("r", None)
    assert [(r.namespace, r.name) for r in everything.rows] == [
        ("", "c"),
        ("a", "B"),
        ("a", "_"),
        ("a", "b"),
        ("b", "x"),
    ]
    assert everything.revision == store.revision() and everything.resume_after is None
    assert [r.name for r in store.list("r", "a").rows] == ["B", "_", "b"]
    page = store.list("r", "a", limit=2)
    assert page.resume_after == ("a", "_")
    assert [r.name for r in store.list("r", "a", after=page.resume_after).rows] == ["b"]


def list_filters_across_batches(store: Store) -> None:
    for n in range(1200):
        store.create("r", "ns", f"o{n:04d}", obj(f"o{n:04d}", even=str(n % 2 == 0)), {})
    wanted = store.list("r", "ns", limit=3, match=lambda row: row.name >= "o1100")
    assert [r.name for r in wanted.rows] == ["o1100", "o1101", "o1102"]
    assert wanted.resume_after == ("ns", "o1102")
    even = store.list("r", "ns", match=lambda row: row.labels()["even"] == "True")
    assert len(even.rows) == 600 and even.resume_after is None


def list_at_an_old_revision_rebuilds_that_state(store: Store) -> None:
    rows = [store.create("r", "ns", n, obj(n), {}) for n in ("a", "b", "c")]
    at = store.revision()
    store.update("r", "ns", "a", rows[0].revision, obj("a", changed="yes"), {})
    store.delete("r", "ns", "b", rows[1].revision)
    store.create("r", "ns", "d", obj("d"), {})
    recreated = store.create("r", "ns", "b", obj("b", again="yes"), {})
    store.update("r", "ns", "c", rows[2].revision, obj("c", changed="yes"), {})
    store.update("r", "ns", "c", store.revision(), obj("c", changed="twice"), {})
    old = store.list("r", "ns", revision=at)
    assert [(r.name, r.revision) for r in old.rows] == [("a", 1), ("b", 2), ("c", 3)]
    assert [r.labels() for r in old.rows] == [{}, {}, {}]
    assert orjson.loads(old.rows[2].body)["metadata"]["resourceVersion"] == "3"
    current = store.list("r", "ns")
    assert [(r.name, r.revision) for r in current.rows] == [
        ("a", 4),
        ("b", recreated.revision),
        ("c", 9),
        ("d", 6),
    ]
    page = store.list("r", "ns", revision=at, limit=2)
    assert ([r.name for r in page.rows], page.resume_after) == (["a", "b"], ("ns", "b"))
    rest = store.list("r", "ns", revision=at, after=page.resume_after, limit=2)
    assert ([r.name for r in rest.rows], rest.resume_after) == (["c"], None)
    between = store.list("r", "ns", revision=5)  # after the delete, before the recreate
    assert [(r.name, r.revision) for r in between.rows] == [("a", 4), ("c", 3)]


def compaction_expires_old_revisions_only(store: Store) -> None:
    for n in range(5):
        store.create("r", "", f"o{n}", obj(f"o{n}"), {})
    assert store.compact(min_age_seconds=3600, min_revisions=0) == 0  # nothing old enough
    assert store.compact(min_age_seconds=0, min_revisions=2) == 3
    with pytest.raises(Expired) as expired:
        store.list("r", None, revision=2)
    assert (expired.value.requested, expired.value.oldest) == (2, 3)
    assert len(store.list("r", None, revision=3).rows) == 3
    changes, compacted = store.changes(0)
    assert compacted == 3 and [c.revision for c in changes] == [4, 5]
    assert store.compact(min_age_seconds=0, min_revisions=2) == 3  # idempotent


def data_survives_reopening(open_store: Callable[[], Store]) -> None:
    first = open_store()
    first.create("r", "ns", "keep", obj("keep"), {"spec.n": "keep"})
    first.close()
    again = open_store()
    try:
        row = again.get("r", "ns", "keep")
        assert row is not None and row.fields() == {"spec.n": "keep"}
        assert again.revision() == 1
    finally:
        again.close()
