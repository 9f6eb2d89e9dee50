"""The fake cluster's own selectors (``tests.fakes.selectors``) follow kube's grammar, matching
and 400s: what the fake's Task and Event lists and watches rely on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.fakes.errors import StatusError
from tests.fakes.selectors import FieldTerm, Requirement, parse_fields, parse_labels, selector

WEB = {"tier": "web", "track": "stable", "size": "3"}
DB = {"tier": "db", "size": "12"}
BARE: dict[str, str] = {}
OPERATORS = "in, notin, =, ==, !=, gt, lt"


def matching(text: str) -> list[str]:
    """Which of the three label sets the selector ``text`` selects."""
    requirements = parse_labels(text)
    named = {"web": WEB, "db": DB, "bare": BARE}
    return [name for name, labels in named.items() if all(r.matches(labels) for r in requirements)]


def refusal(parse: Any, *args: Any) -> str:
    """The message of the 400 that parsing refuses with."""
    with pytest.raises(StatusError) as caught:
        parse(*args)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    return caught.value.message


# -- labels ---------------------------------------------------------------------------------


def test_the_terms_parse_into_requirements() -> None:
    assert parse_labels("a=1, b==2,c!=3 , d in (x, y), e notin (z),f,!g, h>4,i<5") == (
        Requirement("a", "=", ("1",)),
        Requirement("b", "==", ("2",)),
        Requirement("c", "!=", ("3",)),
        Requirement("d", "in", ("x", "y")),
        Requirement("e", "notin", ("z",)),
        Requirement("f", "exists"),
        Requirement("g", "!"),
        Requirement("h", "gt", ("4",)),
        Requirement("i", "lt", ("5",)),
    )


def test_empty_selectors_select_everything() -> None:
    assert parse_labels("") == () and parse_labels("   ") == ()
    assert matching("") == ["web", "db", "bare"]


@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ("tier=web", ["web"]),
        ("tier==db", ["db"]),
        ("tier!=web", ["db", "bare"]),  # a missing label is "not web"
        ("tier in (db,web)", ["web", "db"]),
        ("tier in ( db , web )", ["web", "db"]),
        ("tier notin (web)", ["db", "bare"]),  # and "not in (web)"
        ("tier", ["web", "db"]),
        ("!tier", ["bare"]),
        ("!track", ["db", "bare"]),
        ("tier,track=stable", ["web"]),
        ("tier in (web, db),!track", ["db"]),  # the comma in parentheses is no separator
        ("size>5", ["db"]),  # compared as integers, not as strings
        ("size<5", ["web"]),
        ("tier>1", []),  # a label that is no integer never compares
        ("tier=", []),  # the empty value
        ("tier in ()", []),
        ("track in (stable,)", ["web"]),
        ("tier=web,tier=db", []),  # every requirement must hold
    ],
)
def test_matching(text: str, selected: list[str]) -> None:
    assert matching(text) == selected, text


def test_empty_values_are_values() -> None:
    assert parse_labels("a in ()") == (Requirement("a", "in", ("",)),)
    assert parse_labels("a in (,x,,)") == (Requirement("a", "in", ("", "x")),)
    assert parse_labels("a=,b") == (Requirement("a", "=", ("",)), Requirement("b", "exists"))
    assert parse_labels("a in (x,)")[0].matches({"a": ""})
    assert not parse_labels("a notin (x,)")[0].matches({"a": ""})


def test_in_and_notin_are_keywords_only_where_an_operator_goes() -> None:
    assert parse_labels("in in (notin)") == (Requirement("in", "in", ("notin",)),)
    assert parse_labels("notin=in") == (Requirement("notin", "=", ("in",)),)


def test_keys_may_have_a_dns_prefix() -> None:
    (requirement,) = parse_labels("example.example.com/task-uid")
    assert requirement.key == "example.example.com/task-uid"
    assert requirement.matches({"example.example.com/task-uid": "u"})
    assert not requirement.matches({"task-uid": "u"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tier=web,", "found '', expected: identifier after ','"),
        (",tier", "found ',', expected: !, identifier, or 'end of string'"),
        ("tier=web db", "found 'db', expected: ',' or 'end of string'"),
        ("!tier=web", "found '=', expected: ',' or 'end of string'"),
        ("tier web", "unable to parse requirement: found 'web', expected: " + OPERATORS),
        ("tier ~ web", "unable to parse requirement: found '~', expected: " + OPERATORS),
        ("tier in web", "unable to parse requirement: found 'web' expected: '('"),
        ("tier in (web", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("tier in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
        ("tier=(web)", "unable to parse requirement: found '(', expected: identifier"),
        ("tier!web", "unable to parse requirement: found '!', expected: " + OPERATORS),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        (
            "size>x",
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' "
            "operators, the value must be an integer",
        ),
    ],
)
def test_bad_label_selectors_are_400s_in_kubes_words(text: str, message: str) -> None:
    assert refusal(parse_labels, text) == message


def test_bad_keys_and_values_are_invalid_values() -> None:
    key = refusal(parse_labels, "-tier=web")
    assert key.startswith('unable to parse requirement: <nil>: Invalid value: "-tier": name part')
    prefixed = refusal(parse_labels, "Example.com/tier")
    assert 'Invalid value: "Example.com/tier": prefix part a lowercase RFC 1123' in prefixed
    assert "name part must be no more than 63 characters" in refusal(parse_labels, "k" * 64)
    value = refusal(parse_labels, "tier=-web")
    assert value.startswith('unable to parse requirement: values[0][tier]: Invalid value: "-web"')
    assert "a valid label must be an empty string" in value
    both = refusal(parse_labels, "tier in (ok, -a, b-)")
    assert both.startswith("unable to parse requirement: [values[0][tier]: ")  # sorted
    assert 'Invalid value: "-a"' in both and 'Invalid value: "b-"' in both


# -- fields ---------------------------------------------------------------------------------


def test_field_terms() -> None:
    supported = ("metadata.name", "spec.priority")
    assert parse_fields("metadata.name=a,spec.priority!=1", supported) == (
        FieldTerm("metadata.name", "a"),
        FieldTerm("spec.priority", "1", negated=True),
    )
    assert parse_fields("metadata.name==a", supported) == (FieldTerm("metadata.name", "a"),)
    assert parse_fields("", supported) == () and parse_fields(",", supported) == ()
    assert parse_fields("metadata.name=", supported) == (FieldTerm("metadata.name", ""),)


def test_field_values_unescape_commas_and_equals() -> None:
    (term,) = parse_fields(r"metadata.name=a\,b\=c\\d", ("metadata.name",))
    assert term.value == "a,b=c\\d"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("count=1", "field label not supported: count"),
        ("metadata.name=a,count!=1", "field label not supported: count"),
        (" metadata.name=a", "field label not supported:  metadata.name"),  # nothing is trimmed
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
        (r"metadata.name=a\b", "invalid field selector: invalid escape sequence: \\b"),
        ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_bad_field_selectors_are_400s_in_kubes_words(text: str, message: str) -> None:
    assert refusal(parse_fields, text, ("metadata.name",)) == message


# -- both, on objects -----------------------------------------------------------------------


def event(name: str, namespace: str, uid: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "involvedObject": {"uid": uid},
    }


def uid(obj: Mapping[str, Any]) -> str:
    return str(obj["involvedObject"]["uid"])


def test_selector_tests_labels_metadata_and_served_fields() -> None:
    objects = [
        event("e1", "ns", "u1", kind="x"),
        event("e2", "ns", "u2"),
        event("e3", "other", "u1", kind="x"),
        {"metadata": {"name": "bare"}, "involvedObject": {"uid": ""}},
    ]

    def names(labels: str, fields: str) -> list[str]:
        selects = selector(labels, fields, {"involvedObject.uid": uid})
        return [o["metadata"]["name"] for o in objects if selects(o)]

    assert names("", "") == ["e1", "e2", "e3", "bare"]
    assert names("kind", "metadata.namespace=ns") == ["e1"]
    assert names("!kind", "") == ["e2", "bare"]
    assert names("", "involvedObject.uid=u1,metadata.name!=e1") == ["e3"]
    assert names("", "metadata.namespace!=ns") == ["e3", "bare"]  # no namespace is ""
    assert names("", "metadata.namespace=") == ["bare"]


def test_selector_refuses_before_looking_at_any_object() -> None:
    assert refusal(selector, "", "involvedObject.uid=u1", {}).endswith("involvedObject.uid")
    assert refusal(selector, "a in", "", {}).startswith("unable to parse requirement")
