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

import re
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
once, before a search reads them (and when the store compacts). The pending ids drive both
statements (a join let the planner scan every document: 20 ms at 100,000)."""

SQLITE_SYNC = """
DELETE FROM documents_fts WHERE rowid IN (SELECT id FROM documents_pending);
INSERT INTO documents_fts (rowid, details)
SELECT id, details FROM documents WHERE id IN (SELECT id FROM documents_pending);
DELETE FROM documents_pending;
"""
SQLITE_PENDING = "SELECT EXISTS (SELECT 1 FROM documents_pending)"

POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    res text COLLATE "C" NOT NULL, ns text COLLATE "C" NOT NULL, name text COLLATE "C" NOT NULL,
    kind text NOT NULL, generation bigint NOT NULL, priority bigint, details text NOT NULL,
    words tsvector NOT NULL, -- of the details lower-cased by Python: see _LOWER
    UNIQUE (res, ns, name)
);
CREATE INDEX IF NOT EXISTS documents_words ON documents USING gin (words);
-- the first version numbered documents too: an index and a sequence more for every create
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'documents' AND column_name = 'id') THEN
        ALTER TABLE documents DROP COLUMN id;
    END IF;
END $$;
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


def hits(rows: Sequence[Sequence[Any]], query: Query) -> list[Hit]:
    """The rows of a :meth:`Compiler.search` statement (the last column: the details) as
    hits, each with the snippet of its details."""
    phrases = _phrases(_positive(query))
    return [
        Hit(res, ns, name, kind, generation, priority, rank, _snippet(details, phrases))
        for res, ns, name, kind, generation, priority, rank, details in rows
    ]


_WORDS = re.compile(r"([^\W_]+)")
"""Splits text into separators and words (``[sep, word, sep, ..., word, sep]``), a word being
what both engines index: a run of Unicode letters and digits."""
SNIPPET_WORDS = 16


def snippet(details: str, positive: Sequence[Words]) -> str:
    """Up to 16 words of ``details`` around the first match of a query's words, each word of
    a match in ``[brackets]``, ``...`` where the text goes on. Made here for the page's hits
    (FTS5's ``snippet()`` evaluated the whole query again for each one: a broad query's page
    of 500 spent twice as long on snippets as on finding and ranking its 10,000 matches)."""
    return _snippet(details, _phrases(positive))


def _phrases(positive: Sequence[Words]) -> list[tuple[list[str], bool]]:
    """Each text's words, lower-cased, and whether the last is a prefix."""
    phrases = [(_WORDS.split(words.text.lower())[1::2], words.prefix) for words in positive]
    return [(wanted, prefix) for wanted, prefix in phrases if wanted]


def _snippet(details: str, phrases: list[tuple[list[str], bool]]) -> str:
    parts = _WORDS.split(details)
    words = parts[1::2]
    folded = [word.lower() for word in words]
    marked: set[int] = set()
    for wanted, prefix in phrases:
        marked.update(_phrase_at(folded, wanted, prefix))
    if not marked:
        return ""
    first = max(0, min(min(marked) - 3, len(words) - SNIPPET_WORDS))
    last = min(len(words), first + SNIPPET_WORDS)
    out = ["..." if first else parts[0]]
    for i in range(first, last):
        if i > first:
            out.append(parts[2 * i])
        out.append(f"[{words[i]}]" if i in marked else words[i])
    out.append("..." if last < len(words) else parts[-1])
    return "".join(out)


def _phrase_at(folded: list[str], wanted: list[str], prefix: bool) -> list[int]:
    """The positions of the words of each occurrence of ``wanted`` in ``folded``."""
    n, last = len(wanted), wanted[-1]
    found: list[int] = []
    if n == 1 and not prefix:  # the common case, at C speed
        return [i for i, word in enumerate(folded) if word == last]
    if n == 1:
        starts = [i for i, word in enumerate(folded) if word.startswith(last)]
    else:
        starts = [i for i, word in enumerate(folded[: len(folded) - n + 1]) if word == wanted[0]]
    for i in starts:
        here = folded[i + n - 1]
        if folded[i : i + n - 1] == wanted[:-1] and (
            here == last or (prefix and here.startswith(last))
        ):
            found.extend(range(i, i + n))
    return found


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: tuple[Any, ...]


class Compiler:
    """What differs between the engines: placeholders, a text condition, the rank."""

    placeholder = "?"
    row_id = "d.id AS id, "
    page_row = "id = page.id"
    """How a page's hit finds its document again (for its details)."""

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
        matches = self.matches(query, limit, after)
        inner = (
            f"SELECT {self.row_id}d.res, d.ns, d.name, d.kind, d.generation, d.priority, "
            f"{matches.sql}"
        )
        cursor = "WHERE (rank, res, ns, name) > (?, ?, ?, ?) " if after else ""
        page = f"SELECT * FROM ({inner}) hits {cursor}ORDER BY rank, res, ns, name LIMIT ?"
        # the details of the page's hits only (for their snippets): the matches may be many
        sql = (
            "SELECT page.res, page.ns, page.name, page.kind, page.generation, page.priority, "
            f"page.rank, (SELECT details FROM documents WHERE {self.page_row}) "
            f"FROM ({page}) page ORDER BY rank, res, ns, name"
        )
        params = (*matches.params, *(after or ()), limit)
        return Statement(sql.replace("?", self.placeholder), params)

    def matches(
        self, query: Query, limit: int, after: tuple[float, str, str, str] | None
    ) -> Statement:
        """``<rank> AS rank FROM ... WHERE ...``: the matching documents (``d``), ranked; a
        superset of those of the page of ``limit`` after ``after``."""
        join, rank, ranked_params = self.ranked(_positive(query))
        where = self.where(query)
        return Statement(
            f"{rank} AS rank FROM documents d {join} WHERE {where.sql}",
            (*ranked_params, *where.params),
        )


def _positive(query: Query) -> list[Words]:
    """The text the hits are ranked by: the words of every clause but the ``-`` ones."""
    return [
        c.condition
        for c in query.clauses
        if c.occur is not Occur.MUST_NOT and isinstance(c.condition, Words)
    ]


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
    def matches(
        self, query: Query, limit: int, after: tuple[float, str, str, str] | None
    ) -> Statement:
        """When the words decide what matches (``+a +b -c``, or ``a b -c`` with no ``+``),
        FTS5 evaluates them once, as one expression, and drives the query with the bm25 of
        its matches: the general form asks FTS5 twice (to match, then to rank), and a broad
        query paid a third of its time for the second. When nothing else decides, the
        matches are cut at the page's last possible score before they are joined to their
        keys (:data:`_CUT`): a broad query joined all of its 10,000 matches for a page of 500."""
        text = _fts5_expression(query)
        if text is None:
            return super().matches(query, limit, after)
        rest = Query(
            tuple(
                c
                for c in query.clauses
                if not isinstance(c.condition, Words) and c.occur is not Occur.SHOULD
            )
        )
        if rest.clauses:
            where = self.where(rest)
            return Statement(
                f"r.score AS rank FROM ({_RANKED}) r "
                f"JOIN documents d ON d.id = r.rowid WHERE {where.sql}",
                (text, *where.params),
            )
        since = after[0] if after else _LOWEST
        return Statement(
            f"r.score AS rank FROM ({_CUT}) r JOIN documents d ON d.id = r.rowid",
            (text, since, limit - 1, since),
        )

    def words(self, words: Words) -> Statement:
        return Statement(
            "d.id IN (SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?)",
            (_fts5_phrase(words),),
        )

    def ranked(self, positive: Sequence[Words]) -> tuple[str, str, tuple[Any, ...]]:
        if not positive:
            return "", "0.0", ()
        join = f"LEFT JOIN ({_RANKED}) r ON r.rowid = d.id"
        return join, "COALESCE(r.score, 0.0)", (_fts5_either(positive),)


_RANKED = (
    "SELECT rowid, bm25(documents_fts) AS score FROM documents_fts WHERE documents_fts MATCH ?"
)
_LOWEST = -1.0e308  # below every bm25: no cursor
_CUT = (
    f"WITH m AS MATERIALIZED ({_RANKED}) SELECT rowid, score FROM m WHERE score <= COALESCE(("
    "SELECT score FROM m WHERE score >= ? ORDER BY score "
    "LIMIT 1 OFFSET ? + (SELECT COUNT(*) FROM m WHERE score = ?)), 1e308)"
)
"""The matches of a page of ``limit`` after a cursor at score ``s`` all score at most the
``limit``-th lowest score from ``s`` on, counting also the matches at ``s`` exactly (some of
which the cursor's key may leave out): the rest need not be joined to their keys."""


def _fts5_expression(query: Query) -> str | None:
    """The words' part of ``query`` as one FTS5 expression, when it decides which documents
    match: its ``+`` words (and no plain word, which would only rank) or, with no ``+``
    clause at all, its plain clauses when all are words; ``-`` words are subtracted. None
    otherwise (the general form handles it)."""
    by = {occur: [c.condition for c in query.clauses if c.occur is occur] for occur in Occur}
    must, should, must_not = by[Occur.MUST], by[Occur.SHOULD], by[Occur.MUST_NOT]
    words = [w for w in must if isinstance(w, Words)]
    if words and not any(isinstance(c, Words) for c in should):
        positive = " AND ".join(_fts5_phrase(w) for w in words)
    elif not must and should and all(isinstance(c, Words) for c in should):
        positive = " OR ".join(_fts5_phrase(w) for w in should if isinstance(w, Words))
    else:
        return None
    negative = [_fts5_phrase(w) for w in must_not if isinstance(w, Words)]
    if not negative:
        return f"({positive})"
    return f"({positive}) NOT ({' OR '.join(negative)})"


def _fts5_either(positive: Sequence[Words]) -> str:
    return " OR ".join(_fts5_phrase(w) for w in positive)


class PostgresCompiler(Compiler):
    placeholder = "%s"
    row_id = ""
    page_row = "res = page.res AND ns = page.ns AND name = page.name"

    def words(self, words: Words) -> Statement:
        found = _tsquery(words)
        return Statement(f"d.words @@ {found.sql}", found.params)

    def ranked(self, positive: Sequence[Words]) -> tuple[str, str, tuple[Any, ...]]:
        if not positive:
            return "", "0.0", ()
        either = _either(positive)
        rank = f"(-ts_rank(d.words, {either.sql}))::float8"  # a real: unequal to itself sent back
        return "", rank, either.params


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
