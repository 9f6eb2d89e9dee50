"""RequestInfo is parsed once per method, path and the parameters it reads, and a path longer
than any object's is parsed every time rather than kept (a client may send a megabyte)."""

from __future__ import annotations

from proxy import requestinfo
from proxy.requestinfo import parse

TASKS = "/apis/search.task.example.example.com/v1/namespaces/ns/customtasks"


def test_the_same_request_is_parsed_once_and_its_parameters_tell_apart() -> None:
    first = parse("GET", f"{TASKS}/a", {})
    assert parse("GET", f"{TASKS}/a", {"pretty": "true"}) is first  # a parameter it ignores
    assert parse("GET", TASKS, {"watch": "true"}).verb == "watch"
    assert parse("GET", TASKS, {}).verb == "list"
    selected = parse("GET", TASKS, {"fieldSelector": "metadata.name=b"})
    assert selected.selected_name == "b"
    assert parse("GET", TASKS, {"fieldSelector": "metadata.name=c"}).selected_name == "c"


def test_a_path_longer_than_any_objects_is_not_kept() -> None:
    long = f"{TASKS}/{'x' * 2000}"
    before = requestinfo._parsed.cache_info().currsize
    info = parse("GET", long, {})
    assert (info.verb, info.name) == ("get", "x" * 2000)
    assert requestinfo._parsed.cache_info().currsize == before
    selector = {"fieldSelector": "metadata.name=" + "y" * 2000}
    assert parse("GET", TASKS, selector).selected_name == "y" * 2000
    assert requestinfo._parsed.cache_info().currsize == before
