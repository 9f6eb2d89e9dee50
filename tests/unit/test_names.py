"""kube's name rules, and the memory of valid values that spares repeated checks."""

from __future__ import annotations

from handlers.api import names


def test_kubes_words_for_a_bad_label_value() -> None:
    assert names.label_value("b\n") == [
        "a valid label must be an empty string or consist of alphanumeric characters, '-', "
        "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  "
        "or 'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    ]


def test_a_remembered_valid_value_stays_valid_and_an_invalid_one_is_never_remembered() -> None:
    for _ in range(3):
        assert names.qualified_name("app.kubernetes.io/name") == []
        assert names.qualified_name("app.kubernetes.io/")[0] == "name part must be non-empty"
        assert names.dns1123_label("UPPER") != []
        assert names.dns1123_label("lower") == []


def test_the_memory_is_bounded_and_forgets_nothing_it_should_refuse() -> None:
    for i in range(names.REMEMBERED * 2 + 10):
        assert names.label_value(f"v{i}") == []
        assert len(names.label_value.valid) <= names.REMEMBERED
    assert names.label_value("x" * 64) == ["must be no more than 63 characters"]
    assert names.label_value("v1") == []
