"""The search query language: each operator of the bleve query-string subset the tutorial's
users write, what it means here where bleve is wrong, and errors that say where they fail."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.search import (
    FIELDS,
    MAX_CLAUSES,
    Clause,
    Exact,
    Occur,
    Query,
    QueryError,
    Range,
    Words,
    parse,
)

SHOULD, MUST, MUST_NOT = Occur.SHOULD, Occur.MUST, Occur.MUST_NOT


def one(text: str) -> Clause:
    """The clause ``text`` parses to, beside a plain one (a query of only "-" is refused)."""
    anchor, clause = parse(f"anchor {text}").clauses
    assert anchor == Clause(SHOULD, Words("details", "anchor"))
    return clause


def test_the_tutorials_query_is_a_phrase_of_details_and_a_whole_namespace() -> None:
    assert parse("+details:task-sample-4 +namespace:default") == Query(
        (
            Clause(MUST, Words("details", "task-sample-4")),
            Clause(MUST, Exact("namespace", "default")),
        )
    )


def test_a_bare_value_searches_details() -> None:
    assert one("rebuild") == Clause(SHOULD, Words("details", "rebuild"))


@pytest.mark.parametrize(
    ("text", "clause"),
    [
        ("+shards", Clause(MUST, Words("details", "shards"))),
        ("-replicas", Clause(MUST_NOT, Words("details", "replicas"))),
        ('"page the on-call"', Clause(SHOULD, Words("details", "page the on-call"))),
        ('+details:"on-call engineer"', Clause(MUST, Words("details", "on-call engineer"))),
        ("shard*", Clause(SHOULD, Words("details", "shard", prefix=True))),
        ("sample-*", Clause(SHOULD, Words("details", "sample-", prefix=False))),
    ],
)
def test_must_mustnot_phrases_and_prefixes_of_text(text: str, clause: Clause) -> None:
    assert one(text) == clause


@pytest.mark.parametrize(
    ("text", "clause"),
    [
        ("name:task-sample-4", Clause(SHOULD, Exact("name", "task-sample-4"))),
        ("+name:task-*", Clause(MUST, Exact("name", "task-", prefix=True))),
        ('namespace:"default"', Clause(SHOULD, Exact("namespace", "default"))),
        ("-kind:CustomTask", Clause(MUST_NOT, Exact("kind", "customtask"))),
    ],
)
def test_names_namespaces_and_kinds_match_whole_values_never_words(
    text: str, clause: Clause
) -> None:
    """bleve's ``+name:task-sample-4`` matched any name with the word "task", "sample" or "4"
    (task-sample-3 too); here it is the whole name, and ``*`` makes it a prefix."""
    assert one(text) == clause


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("priority:7", Range("priority", 7, 7)),
        ("priority:>=5", Range("priority", 5, None)),
        ("priority:>5", Range("priority", 5, None, low_inclusive=False)),
        ("generation:<=3", Range("generation", None, 3)),
        ("generation:<3", Range("generation", None, 3, high_inclusive=False)),
    ],
)
def test_numbers_take_a_value_or_a_bound(text: str, condition: Range) -> None:
    assert one(f"+{text}") == Clause(MUST, condition)


@pytest.mark.parametrize(
    ("text", "clause"),
    [
        ("it's", Clause(SHOULD, Words("details", "it's"))),  # a quote inside a term is text
        ("on-call", Clause(SHOULD, Words("details", "on-call"))),  # a hyphen inside too
        ("\\+1", Clause(SHOULD, Words("details", "+1"))),  # escaped, not "must"
        ("\\-x", Clause(SHOULD, Words("details", "-x"))),
        ("a\\:b", Clause(SHOULD, Words("details", "a:b"))),  # escaped, not a field
        ('say\\"hi', Clause(SHOULD, Words("details", 'say"hi'))),
        ('"a \\"quoted\\" word"', Clause(SHOULD, Words("details", 'a "quoted" word'))),
        ("x\\*", Clause(SHOULD, Words("details", "x*"))),  # an escaped star is no prefix
    ],
)
def test_hyphens_quotes_and_escapes_stay_text(text: str, clause: Clause) -> None:
    assert one(text) == clause


def test_clauses_keep_their_order_and_white_space_separates_them() -> None:
    assert [c.occur for c in parse("  a\t+b\n-c  ").clauses] == [SHOULD, MUST, MUST_NOT]


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", "an empty query", 0),
        ("   ", "an empty query", 0),
        ("colour:red", "unknown field 'colour'", 0),
        ("+", "'+' with nothing after it", 0),
        ("a - b", "'-' with nothing after it", 2),
        ("name: x", "no value after name:", 4),
        ('x "unclosed', "a phrase with no closing quote", 2),
        ("a*b", "a wildcard (*) only ends a value, as a prefix", 1),
        ("priority:high", "priority takes a whole number, not 'high'", 9),
        ("priority:>=", "priority takes a whole number, not ''", 11),
        ('generation:"3"', "generation takes a number, not text", 11),
        ("x \\", "a backslash with nothing to escape", 2),
        ("+--", "'--' has no words to search", 1),
        ("-a -b", "a query of only excluding (-) clauses", 0),
    ],
)
def test_a_malformed_query_says_where_it_fails(text: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as error:
        parse(text)
    assert str(error.value).startswith(message), str(error.value)
    assert error.value.position == position
    assert str(error.value).endswith(f"at character {position + 1}")


def test_a_query_has_a_bounded_number_of_clauses() -> None:
    parse(" ".join(["w"] * MAX_CLAUSES))
    with pytest.raises(QueryError, match=f"more than {MAX_CLAUSES} clauses"):
        parse(" ".join(["w"] * (MAX_CLAUSES + 1)))


PIECES = st.sampled_from(
    [
        "+",
        "-",
        '"',
        "\\",
        "*",
        ":",
        " ",
        ">=",
        "<",
        "a",
        "Z9",
        "é",
        "東",
        *[f"{f}:" for f in FIELDS],
    ]
)


@given(st.one_of(st.text(max_size=60), st.lists(PIECES, max_size=20).map("".join)))
def test_any_text_is_a_query_or_a_query_error(text: str) -> None:
    """Whatever a user types, the parser answers a Query or a QueryError pointing into the
    text: never another exception, never a text clause without a word to search."""
    try:
        query = parse(text)
    except QueryError as error:
        assert 0 <= error.position <= len(text)
        return
    assert 0 < len(query.clauses) <= MAX_CLAUSES
    assert any(c.occur is not MUST_NOT for c in query.clauses)
    for clause in query.clauses:
        condition = clause.condition
        if isinstance(condition, Words):
            assert any(char.isalnum() for char in condition.text)
        elif isinstance(condition, Exact):
            assert condition.value
