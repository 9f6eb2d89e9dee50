"""The search index's SQL on both engines: each operator of the query language over a small
corpus, ranking and keyset paging, and user text that never becomes query syntax."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from store.fulltext import (
    POSTGRES_INSERT,
    POSTGRES_SCHEMA,
    SQLITE_INSERT,
    SQLITE_SCHEMA,
    SQLITE_SYNC,
    Document,
    Hit,
    PostgresCompiler,
    SQLiteCompiler,
    hits,
    snippet,
)
from store.search import Words, parse
from tests.support.postgres import postgres_database_fixture, postgres_url_fixture  # noqa: F401

D = Document
DOCUMENTS = [
    ("default", "task-sample-3", D("task", 1, 3, "Rebuild the search shards of task-sample-3")),
    ("default", "task-sample-4", D("task", 2, 4, "Rebuild the search shards of task-sample-4")),
    ("default", "reindex", D("customtask", 5, 9, "Reindex the tenant's shards, then page on-call")),
    ("other", "task-sample-4", D("task", 1, 1, "Compare document counts with the primary")),
    ("other", "quotes", D("clustertask", 1, None, 'He said "hello" -- it\'s on-call\'s; a:b +1')),
    ("other", "école", D("Task", 3, 7, "Écrire le résumé des répliques; 東京 shards")),
]  # fmt: skip

Search = Callable[[str, int, "tuple[float, str, str, str] | None"], list[Hit]]


def sqlite_search(tmp_path: Path) -> Iterator[Search]:
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.executescript(SQLITE_SCHEMA)
    conn.executemany(SQLITE_INSERT, [d.sqlite_row("r", ns, name) for ns, name, d in DOCUMENTS])
    conn.executescript(SQLITE_SYNC)
    conn.commit()

    def search(text: str, limit: int, after: Any) -> list[Hit]:
        query = parse(text)
        statement = SQLiteCompiler().search(query, limit, after)
        return hits(conn.execute(statement.sql, statement.params).fetchall(), query)

    yield search
    conn.close()


def postgres_search(url: str) -> Iterator[Search]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(POSTGRES_SCHEMA)
        with conn.cursor() as cursor:
            cursor.executemany(
                POSTGRES_INSERT, [d.postgres_row("r", ns, name) for ns, name, d in DOCUMENTS]
            )

        def search(text: str, limit: int, after: Any) -> list[Hit]:
            query = parse(text)
            statement = PostgresCompiler().search(query, limit, after)
            return hits(conn.execute(statement.sql, statement.params).fetchall(), query)

        yield search


@pytest.fixture(params=["sqlite", "postgresql"])
def search(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Search]:
    if request.param == "sqlite":
        yield from sqlite_search(tmp_path)
    else:
        yield from postgres_search(request.getfixturevalue("postgres_database"))


def keys(found: Sequence[Hit]) -> set[str]:
    return {f"{h.namespace}/{h.name}" for h in found}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # the tutorial's query: the phrase, in one namespace; never task-sample-3
        ("+details:task-sample-4 +namespace:default", {"default/task-sample-4"}),
        ("+name:task-sample-4", {"default/task-sample-4", "other/task-sample-4"}),
        (
            "shards",
            {"default/task-sample-3", "default/task-sample-4", "default/reindex", "other/école"},
        ),
        ("+shards -reindex", {"default/task-sample-3", "default/task-sample-4", "other/école"}),
        ("+shards +priority:>=4", {"default/task-sample-4", "default/reindex", "other/école"}),
        ("+shards +priority:>4 +priority:<9", {"other/école"}),
        ("+shards -priority:>=4", {"default/task-sample-3"}),
        ("generation:>=3", {"default/reindex", "other/école"}),
        ("-priority:3 +namespace:other", {"other/task-sample-4", "other/quotes", "other/école"}),
        ('"then page on-call"', {"default/reindex"}),
        ('"page on-call"', {"default/reindex"}),  # a phrase: "page" right before "on call"
        ('"shards rebuild"', set()),  # both words are there, not in that order
        ("rebui*", {"default/task-sample-3", "default/task-sample-4"}),
        ("+name:task-* +namespace:other", {"other/task-sample-4"}),
        ("kind:CustomTask", {"default/reindex"}),
        ("kind:task -namespace:default", {"other/task-sample-4", "other/école"}),
        ("écrire", {"other/école"}),  # no diacritics removed, case folded
        ("ÉCRIRE", {"other/école"}),
        ("東京", {"other/école"}),
        ("name:école", {"other/école"}),
        ("it's", {"other/quotes"}),
        ('"hello"', {"other/quotes"}),
        ('say\\"hello', set()),  # the phrase "say hello": absent
        ("a\\:b", {"other/quotes"}),  # "a b": the escaped colon is no field
        ("\\+1", {"other/quotes"}),
        ("NEAR OR AND NOT", set()),  # FTS5 operators are words here
        ("details:details", set()),  # a column filter in FTS5 syntax is a word too
        ("tenant", {"default/reindex"}),
        # the forms FTS5 answers with one expression: words that must, words of which one
        # must, both less the words that must not; and forms it cannot (ranking words beside
        # a must, a plain clause that is no word)
        ("+shards +rebuild", {"default/task-sample-3", "default/task-sample-4"}),
        ("reindex tenant -shards", set()),
        ("tenant écrire -東京", {"default/reindex"}),
        ("+rebuild shards", {"default/task-sample-3", "default/task-sample-4"}),
        ("tenant name:quotes", {"default/reindex", "other/quotes"}),
        ("+shards -name:reindex -priority:>=7", {"default/task-sample-3", "default/task-sample-4"}),
        ("primary counts", {"other/task-sample-4"}),  # either word, as bleve's plain clauses
    ],
)
def test_each_operator_finds_what_it_says(search: Search, query: str, expected: set[str]) -> None:
    assert keys(search(query, 100, None)) == expected


def test_hits_rank_the_most_relevant_first_then_by_key(search: Search) -> None:
    found = search("shards rebuild", 100, None)
    assert [h.name for h in found[:2]] == ["task-sample-3", "task-sample-4"]  # both words
    assert [h.rank for h in found] == sorted(h.rank for h in found)
    assert "[shards]" in found[0].snippet or "[Rebuild]" in found[0].snippet


def test_paging_by_one_returns_each_hit_once_in_order(search: Search) -> None:
    everything = search("shards", 100, None)
    paged: list[Hit] = []
    after = None
    while page := search("shards", 1, after):
        paged += page
        last = page[-1]
        after = (last.rank, last.res, last.namespace, last.name)
    assert paged == everything and len(paged) == 4


def test_hits_carry_what_the_answer_shows(search: Search) -> None:
    (hit,) = search("+name:reindex", 10, None)
    assert (hit.res, hit.namespace, hit.kind, hit.generation, hit.priority) == (
        "r",
        "default",
        "customtask",
        5,
        9,
    )


def test_a_snippet_marks_the_words_of_each_match_in_a_window_of_16() -> None:
    def positive(text: str) -> list[Words]:
        return [c.condition for c in parse(text).clauses if isinstance(c.condition, Words)]

    words = " ".join(f"w{n}" for n in range(30))
    assert snippet(words.replace("w12", "Replica"), positive("replica")) == (
        "...w9 w10 w11 [Replica] w13 w14 w15 w16 w17 w18 w19 w20 w21 w22 w23 w24..."
    )
    assert snippet('Say "hello world" to x-ray-9.', positive('"hello world" x-ray-9')) == (
        'Say "[hello] [world]" to [x]-[ray]-[9].'
    )
    assert snippet("hello there, world", positive('"hello world"')) == ""  # not the phrase
    assert snippet("rebuild the shards", positive("rebui* +shards")) == "[rebuild] the [shards]"
    assert snippet("w1 w2 Écrire", positive("écrire")) == "w1 w2 [Écrire]"
