"""What the SQL stores share: statements built per placeholder style, stored rows, type codes."""

from __future__ import annotations

import itertools

import orjson

from store import ADDED, DELETED, EVENT_TYPES, FIELD, LABEL, MODIFIED, Term, stored_row
from store.sql import Statements


def test_statements_differ_only_in_placeholders() -> None:
    sqlite, postgres = Statements("?"), Statements("%s")
    assert postgres.get == sqlite.get.replace("?", "%s") and "%" not in sqlite.get
    narrows = [None, Term(LABEL, "k", ("v",)), Term(FIELD, "f", ("1", "2"))]
    for namespace, at, limit, narrow in itertools.product(
        [None, "ns"], [None, 7], [None, 3], narrows
    ):
        statements = sqlite.page("r", namespace, at, ("a", "b"), limit, narrow)
        assert len(statements) == (1 if at is None else 2)
        for query, params in statements:
            assert query.count("?") == len(params)
        assert postgres.page("r", namespace, at, ("a", "b"), limit, narrow) == tuple(
            (query.replace("?", "%s"), params) for query, params in statements
        )
    for resource in (None, "r"):
        query, params = sqlite.changes(4, resource, 10)
        assert query.count("?") == len(params)
        assert postgres.changes(4, resource, 10) == (query.replace("?", "%s"), params)


def test_stored_row_serves_the_value_at_its_revision() -> None:
    row = stored_row("ns", "a", 7, b'{"metadata":{"name":"a"}}', b'{"x":"1"}')
    assert orjson.loads(row.body) == {"metadata": {"resourceVersion": "7", "name": "a"}}
    assert (row.namespace, row.name, row.revision, row.labels(), row.fields()) == (
        "ns",
        "a",
        7,
        {"x": "1"},
        {},
    )


def test_event_type_codes_index_their_names() -> None:
    assert [EVENT_TYPES[code] for code in (ADDED, MODIFIED, DELETED)] == list(EVENT_TYPES)
    assert (ADDED, MODIFIED, DELETED) == (0, 1, 2)  # the log's type column and the PL/pgSQL
