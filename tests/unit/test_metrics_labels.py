"""kube's label values for a request (k8s.io/apiserver ``pkg/endpoints/metrics``:
``CanonicalVerb``, ``CleanVerb``, ``CleanScope``, ``cleanDryRun``) and the store's figures
as a scrape reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proxy.metrics import dry_run, scope, verb
from proxy.requestinfo import parse
from proxy.scrape import StoreFigures
from store import Store
from store.sqlite import SQLiteStore
from tests.support.scraping import Series, series

GROUP = "search.task.example.example.com"
GV = f"/apis/{GROUP}/v1"


@pytest.mark.parametrize(
    ("method", "path", "query", "content_type", "expected"),
    [
        ("GET", f"{GV}/namespaces/a/customtasks/x", {}, "", ("GET", "resource")),
        ("HEAD", f"{GV}/namespaces/a/customtasks/x", {}, "", ("GET", "resource")),
        ("GET", f"{GV}/namespaces/a/customtasks", {}, "", ("LIST", "namespace")),
        ("GET", f"{GV}/customtasks", {}, "", ("LIST", "cluster")),
        ("GET", f"{GV}/clustertasks", {"watch": "true"}, "", ("WATCH", "cluster")),
        ("GET", f"{GV}/watch/namespaces/a/customtasks", {}, "", ("WATCH", "namespace")),
        ("POST", f"{GV}/namespaces/a/customtasks", {}, "", ("POST", "resource")),
        ("DELETE", f"{GV}/namespaces/a/customtasks", {}, "", ("DELETE", "namespace")),
        ("PUT", f"{GV}/clustertasks/x/status", {}, "", ("PUT", "resource")),
        (
            "PATCH",
            f"{GV}/clustertasks/x",
            {},
            "application/merge-patch+json",
            ("PATCH", "resource"),
        ),
        (
            "PATCH",
            f"{GV}/clustertasks/x",
            {},
            "application/apply-patch+yaml",
            ("APPLY", "resource"),
        ),
        ("OPTIONS", f"{GV}/clustertasks/x", {}, "", ("other", "resource")),
    ],
)
def test_verb_and_scope_are_kubes(
    method: str, path: str, query: dict[str, str], content_type: str, expected: tuple[str, str]
) -> None:
    info = parse(method, path, query)
    assert (verb(method, info, content_type), scope(info)) == expected


def test_non_resource_paths_have_no_scope() -> None:
    assert scope(parse("GET", "/healthz", {})) == ""


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("limit=5", ""),
        ("dryRun=All", "All"),
        ("dryRun=All&dryRun=All", "All"),
        ("dryRun=Some", "invalid"),
        ("dryRun=All&dryRun=x", "invalid"),
    ],
)
def test_dry_run_is_cleaned_as_kube_cleans_it(query: str, expected: str) -> None:
    assert dry_run(query) == expected


def figures(collector: StoreFigures) -> dict[Series, float]:
    return {
        series(sample.name, **sample.labels): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_the_store_figures_count_objects_per_resource_and_its_revisions(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    for name in ("a", "b", "c"):
        store.create("customtasks", "team", name, {"metadata": {"name": name}}, {})
    store.delete("customtasks", "team", "c", store.get("customtasks", "team", "c").revision)  # type: ignore[union-attr]
    found = figures(StoreFigures(lambda: store, ["customtasks", "clustertasks"], every=0))
    assert found[series("apiserver_resource_objects", group=GROUP, resource="customtasks")] == 2
    assert found[series("apiserver_resource_objects", group=GROUP, resource="clustertasks")] == 0
    assert found[series("apiserver_storage_objects", resource=f"customtasks.{GROUP}")] == 2
    assert found[series("task_search_store_revision")] == 4
    assert found[series("task_search_store_compacted_revision")] == 0
    store.close()


def test_a_store_that_cannot_be_read_reports_minus_one_as_kube(tmp_path: Path) -> None:
    def broken() -> Store:
        raise OSError("disk gone")

    found = figures(StoreFigures(broken, ["customtasks"], every=0))
    assert found[series("apiserver_storage_objects", resource=f"customtasks.{GROUP}")] == -1
    assert found[series("task_search_store_revision")] == -1


def test_the_store_is_counted_at_most_once_per_interval(tmp_path: Path) -> None:
    calls: list[Any] = []
    store = SQLiteStore(str(tmp_path / "s.db"))

    def counted() -> Store:
        calls.append(1)
        return store

    collector = StoreFigures(counted, ["customtasks"], every=60)
    for _ in range(3):
        figures(collector)
    assert len(calls) == 1
    store.close()
