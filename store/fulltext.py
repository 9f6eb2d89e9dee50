"""The search index's tables and a :class:`store.search.Query` compiled to each engine's SQL.

One row of ``documents`` per searchable object (the latest generation of each): its key, kind
(lower-cased), generation, priority and details. The words of the details are indexed by the
engine: SQLite FTS5 (``unicode61`` without diacritics removal), brought up to date before each
search from the documents the writes marked pending (see :data:`SQLITE_SCHEMA`); PostgreSQL a
``tsvector`` (configuration ``simple``: no stemming, no stop words) under a GIN index. Both
split words alike for what tasks hold: Unicode letters and digits, lower-cased.

A query becomes one statement with bound parameters only: a value's text reaches FTS5 inside
a quoted string (a phrase of its words) and PostgreSQL through ``phraseto_tsquery``, never as
query syntax. Hits come ranked (bm25 / ts_rank, then key) with keyset paging on
(rank, res, ns, name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from store.search import Condition, Exact, Occur, Query, Range, Words

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    res TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
    generation INTEGER NOT NULL, priority INTEGER, details TEXT NOT NULL,
    UNIQUE (res, ns, name)
);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
    details, tokenize='unicode61 remove_diacritics 0'
);
-- documents whose words are not yet in documents_fts (written by SQLITE_SYNC); the triggers
-- test for an entry rather than INSERT OR IGNORE, as an upsert's conflict policy (abort)
-- overrides those of the statements of the triggers it fires
CREATE TABLE IF NOT EXISTS documents_pending (id INTEGER PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS documents_added AFTER INSERT ON documents BEGIN
    INSERT INTO documents_pending (id) SELECT new.id
    WHERE NOT EXISTS (SELECT 1 FROM documents_pending WHERE id = new.id);
END;
CREATE TRIGGER IF NOT EXISTS documents_removed AFTER DELETE ON documents BEGIN
    INSERT INTO documents_pending (id) SELECT old.id
    WHERE NOT EXISTS (SELECT 1 FROM documents_pending WHERE id = old.id);
END;
CREATE TRIGGER IF NOT EXISTS documents_changed AFTER UPDATE OF details ON documents BEGIN
    INSERT INTO documents_pending (id) SELECT new.id
    WHERE NOT EXISTS (SELECT 1 FROM documents_pending WHERE id = new.id);
END;
"""
"""FTS5 writes a segment of its index at the end of every statement that changes it (its
savepoint hook flushes), 130,000 instructions whatever the statement holds: a write marks its
document pending, and :data:`SQLITE_SYNC` brings the words of all pending documents in at
once, before a search reads them (and when the store compacts)."""

SQLITE_SYNC = """
DELETE FROM documents_fts WHERE rowid IN (SELECT id FROM documents_pending);
INSERT INTO documents_fts (rowid, details)
SELECT d.id, d.details FROM documents d JOIN documents_pending p ON p.id = d.id;
DELETE FROM documents_pending;
"""
SQLITE_PENDING = "SELECT EXISTS (SELECT 1 FROM documents_pending)"

POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id bigserial PRIMARY KEY,
    res text COLLATE "C" NOT NULL, ns text COLLATE "C" NOT NULL, name text COLLATE "C" NOT NULL,
    kind text NOT NULL, generation bigint NOT NULL, priority bigint, details text NOT NULL,
    words tsvector NOT NULL, -- of the details lower-cased by Python: see _LOWER
    UNIQUE (res, ns, name)
);
CREATE INDEX IF NOT EXISTS documents_words ON documents USING gin (words);
"""

_LOWER = str.lower
"""PostgreSQL lower-cases by the database's locale: under ``C`` only ASCII, so "Écrire" would
never match "écrire". Both the indexed details and the searched text are lower-cased here."""

SQLITE_INSERT = (
    "INSERT INTO documents (res, ns, name, kind, generation, priority, details) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
POSTGRES_INSERT = (
    "INSERT INTO documents (res, ns, name, kind, generation, priority, details, words) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, to_tsvector('simple', %s))"
)


@dataclass(frozen=True, slots=True)
class Document:
    """What the index keeps of one object besides its key: kind, generation, priority and
    details (the kind declares how to read them from its objects)."""

    kind: str
    generation: int
    priority: int | None
    details: str

    def sqlite_row(self, res: str, namespace: str, name: str) -> tuple[Any, ...]:
        """The parameters of :data:`SQLITE_INSERT`."""
        return (res, namespace, name, *self.values()[:4])

    def postgres_row(self, res: str, namespace: str, name: str) -> tuple[Any, ...]:
        """The parameters of :data:`POSTGRES_INSERT`."""
        return (res, namespace, name, *self.values())

    def values(self) -> tuple[Any, ...]:
        """Kind (lower-cased), generation, priority, details and the text PostgreSQL's
        ``tsvector`` is made of."""
        return (
            self.kind.lower(),
            self.generation,
            self.priority,
            self.details,
            _LOWER(self.details),
        )


def task_document(kind: str, obj: Mapping[str, Any]) -> Document:
    """What the index keeps of an object shaped as the tutorial's Task (a cluster Task, a
    CustomTask, a ClusterTask): its kind, generation, priority and details."""
    spec = obj.get("spec") or {}
    priority = spec.get("priority")
    return Document(
        kind,
        int(obj["metadata"].get("generation") or 1),
        priority if isinstance(priority, int) and not isinstance(priority, bool) else None,
        str(spec.get("details") or ""),
    )


_FIELD_COLUMNS = {"name": "d.name", "namespace": "d.ns", "kind": "d.kind"}
_LAST = "\U0010ffff"  # after every character: the end of a prefix's range


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result, in rank order (``rank``: lower is better on both engines)."""

    res: str
    namespace: str
    name: str
    kind: str
    generation: int
    priority: int | None
    rank: float
    snippet: str


def hits(rows: Sequence[Sequence[Any]]) -> list[Hit]:
    """The rows of a :meth:`Compiler.search` statement as hits."""
    return [Hit(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: tuple[Any, ...]


class Compiler:
    """What differs between the engines: placeholders, a text condition, the rank."""

    placeholder = "?"

    def words(self, words: Words) -> Statement:
        raise NotImplementedError

    def ranked(self, positive: Sequence[Words]) -> tuple[str, str, tuple[Any, ...]]:
        """A FROM-clause addition, the rank expression, and their parameters."""
        raise NotImplementedError

    def condition(self, condition: Condition) -> Statement:
        if isinstance(condition, Words):
            return self.words(condition)
        if isinstance(condition, Exact):
            column = _FIELD_COLUMNS[condition.field]
            if condition.prefix:
                return Statement(
                    f"{column} >= ? AND {column} < ?", (condition.value, condition.value + _LAST)
                )
            return Statement(f"{column} = ?", (condition.value,))
        return _range(condition)

    def where(self, query: Query) -> Statement:
        must = [c for c in query.clauses if c.occur is Occur.MUST]
        should = [c for c in query.clauses if c.occur is Occur.SHOULD]
        must_not = [c for c in query.clauses if c.occur is Occur.MUST_NOT]
        parts: list[str] = []
        params: list[Any] = []
        for clause in must:
            found = self.condition(clause.condition)
            parts.append(f"({found.sql})")
            params += found.params
        if should and not must:
            either = [self.condition(c.condition) for c in should]
            parts.append("(" + " OR ".join(f"({s.sql})" for s in either) + ")")
            params += [p for s in either for p in s.params]
        for clause in must_not:
            found = self.condition(clause.condition)
            parts.append(f"CASE WHEN {found.sql} THEN 0 ELSE 1 END = 1")  # NULL is no match
            params += found.params
        return Statement(" AND ".join(parts), tuple(params))

    def search(
        self, query: Query, limit: int, after: tuple[float, str, str, str] | None
    ) -> Statement:
        """The hits of ``query``, ``limit`` of them after the key ``after``."""
        where = self.where(query)
        positive = [
            c.condition
            for c in query.clauses
            if c.occur is not Occur.MUST_NOT and isinstance(c.condition, Words)
        ]
        join, rank, ranked_params = self.ranked(positive)
        snippet, snippet_params = self.snippet(positive)
        inner = (
            f"SELECT d.id, d.res, d.ns, d.name, d.kind, d.generation, d.priority, {rank} AS rank "
            f"FROM documents d {join} WHERE {where.sql}"
        )
        cursor = "WHERE (rank, res, ns, name) > (?, ?, ?, ?) " if after else ""
        page = f"SELECT * FROM ({inner}) hits {cursor}ORDER BY rank, res, ns, name LIMIT ?"
        # snippets of the page's hits only: a query's matches may be thousands
        sql = (
            "SELECT page.res, page.ns, page.name, page.kind, page.generation, page.priority, "
            f"page.rank, {snippet} FROM ({page}) page ORDER BY rank, res, ns, name"
        )
        params = (*snippet_params, *ranked_params, *where.params, *(after or ()), limit)
        return Statement(sql.replace("?", self.placeholder), params)

    def snippet(self, positive: Sequence[Words]) -> tuple[str, tuple[Any, ...]]:
        """The snippet of a hit of the page (``page.id``) and its parameters."""
        raise NotImplementedError


def _range(condition: Range) -> Statement:
    column = f"d.{condition.field}"
    parts: list[str] = []
    params: list[Any] = []
    if condition.low is not None:
        parts.append(f"{column} {'>=' if condition.low_inclusive else '>'} ?")
        params.append(condition.low)
    if condition.high is not None:
        parts.append(f"{column} {'<=' if condition.high_inclusive else '<'} ?")
        params.append(condition.high)
    return Statement(" AND ".join(parts), tuple(params))


def _fts5_phrase(words: Words) -> str:
    """The value as one FTS5 string (a phrase of its words), prefix-marked if asked."""
    return '"' + words.text.replace('"', '""') + '"' + (" *" if words.prefix else "")


class SQLiteCompiler(Compiler):
    def words(self, words: Words) -> Statement:
        return Statement(
            "d.id IN (SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?)",
            (_fts5_phrase(words),),
        )

    def ranked(self, positive: Sequence[Words]) -> tuple[str, str, tuple[Any, ...]]:
        if not positive:
            return "", "0.0", ()
        join = (
            "LEFT JOIN (SELECT rowid, bm25(documents_fts) AS score FROM documents_fts "
            "WHERE documents_fts MATCH ?) r ON r.rowid = d.id"
        )
        return join, "COALESCE(r.score, 0.0)", (_fts5_either(positive),)

    def snippet(self, positive: Sequence[Words]) -> tuple[str, tuple[Any, ...]]:
        if not positive:
            return "''", ()
        snippet = (
            "COALESCE((SELECT snippet(documents_fts, 0, '[', ']', '...', 16) FROM documents_fts "
            "WHERE documents_fts MATCH ? AND rowid = page.id), '')"
        )
        return snippet, (_fts5_either(positive),)


def _fts5_either(positive: Sequence[Words]) -> str:
    return " OR ".join(_fts5_phrase(w) for w in positive)


class PostgresCompiler(Compiler):
    placeholder = "%s"

    def words(self, words: Words) -> Statement:
        found = _tsquery(words)
        return Statement(f"d.words @@ {found.sql}", found.params)

    def ranked(self, positive: Sequence[Words]) -> tuple[str, str, tuple[Any, ...]]:
        if not positive:
            return "", "0.0", ()
        either = _either(positive)
        rank = f"(-ts_rank(d.words, {either.sql}))::float8"  # a real: unequal to itself sent back
        return "", rank, either.params

    def snippet(self, positive: Sequence[Words]) -> tuple[str, tuple[Any, ...]]:
        if not positive:
            return "''", ()
        either = _either(positive)
        snippet = (
            f"(SELECT ts_headline('simple', d.details, {either.sql}, "
            "'StartSel=[, StopSel=], MaxWords=16, MinWords=4') FROM documents d "
            "WHERE d.id = page.id)"
        )
        return snippet, either.params


def _either(positive: Sequence[Words]) -> Statement:
    queries = [_tsquery(w) for w in positive]
    return Statement(
        "(" + " || ".join(q.sql for q in queries) + ")", tuple(p for q in queries for p in q.params)
    )


def _tsquery(words: Words) -> Statement:
    """A tsquery of the value's words as a phrase, the last one a prefix if asked: the text
    goes through ``phraseto_tsquery`` (no syntax), a prefix word through ``quote_literal``."""
    text = _LOWER(words.text)
    if not words.prefix:
        return Statement("phraseto_tsquery('simple', ?)", (text,))
    start = len(text)
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    head, last = text[:start], text[start:]
    prefix = "to_tsquery('simple', quote_literal(?) || ':*')"
    if not any(char.isalnum() for char in head):
        return Statement(prefix, (last,))
    return Statement(f"tsquery_phrase(phraseto_tsquery('simple', ?), {prefix})", (head, last))
