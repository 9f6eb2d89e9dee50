"""R5: label selectors with the full grammar, field selectors with kube's errors."""

from __future__ import annotations

import pytest

from handlers.api.errors import ApiError
from handlers.api.selectors import parse_field_selector, parse_label_selector


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=x", {"a": "x"}, True),
        ("a==x", {"a": "y"}, False),
        ("a!=x", {}, True),
        ("a!=x", {"a": "x"}, False),
        ("a in (x,y),!b", {"a": "y"}, True),
        ("a in (x,y),!b", {"a": "y", "b": "1"}, False),
        ("a in (x, y)", {"a": "z"}, False),
        ("a notin (x,y)", {}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a", {"a": ""}, True),
        ("a", {}, False),
        ("!a", {}, True),
        ("example.com/tier=web,env", {"example.com/tier": "web", "env": "p"}, True),
        ("n>3", {"n": "4"}, True),
        ("n<3", {"n": "4"}, False),
        ("n>3", {"n": "x"}, False),
        ("a=", {"a": ""}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_label_selector_matches_like_kube(
    selector: str, labels: dict[str, str], expected: bool
) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


@pytest.mark.parametrize(
    "selector", ["a in (x", "a in x", "=x", "a,", "a=b=c", "!", "a notin (x,,", "Bad Key=1", "a=%"]
)
def test_malformed_label_selector_is_a_400(selector: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_label_selector(selector)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    assert caught.value.message.startswith("unable to parse requirement")


def test_field_selector_supports_equality_inequality_and_escapes() -> None:
    supported = ("metadata.name", "spec.taskState")
    selector = parse_field_selector("metadata.name==a\\,b,spec.taskState!=Finished", supported)
    values = {"metadata.name": "a,b", "spec.taskState": "Pending"}
    assert selector.matches(values.__getitem__)
    assert selector.exact("metadata.name") == "a,b"
    assert not selector.matches({**values, "spec.taskState": "Finished"}.__getitem__)


def test_unsupported_field_is_a_400_in_kube_wording() -> None:
    with pytest.raises(ApiError) as caught:
        parse_field_selector("spec.details=x", ("metadata.name",))
    assert caught.value.code == 400
    assert caught.value.message == "field label not supported: spec.details"
