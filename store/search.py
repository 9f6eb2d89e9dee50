"""The search index's query language: the part of bleve's query-string syntax that users of
the tutorial's ``details?q=`` write, parsed into a :class:`Query` the stores compile to
their own full-text engines (user text never reaches FTS5 ``MATCH`` or ``to_tsquery`` raw).

Syntax, clauses separated by white space::

    word  "a phrase"  +must  -mustnot  field:value  field:"a phrase"  word*
    priority:>=5  generation:<3  priority:7

- A bare value searches the default field, ``details``. The engine splits it into words as
  it split the indexed text (Unicode words, lower-cased, no stemming); a value of several
  words (``task-sample-4``, ``"a phrase"``) matches them as a phrase, never any one of them
  (bleve's OR of the words is how its ``+name:task-sample-4`` matched ``task-sample-3``).
- ``name``, ``namespace`` and ``kind`` match the whole value exactly (``kind`` ignoring case);
  a trailing ``*`` makes any of these a prefix match.
- ``generation`` and ``priority`` take a number, after an optional ``>``, ``>=``, ``<``, ``<=``.
- ``+`` clauses must match and ``-`` clauses must not; when there is no ``+`` clause, at least
  one plain clause must match (as in bleve); otherwise plain clauses only rank.
- A backslash takes the next character literally (``\\+1``, ``\\"``, ``\\:``); inside a phrase
  only ``\\"`` and ``\\\\`` are escapes.

Anything else (an unknown field, an unterminated phrase, a value with no words) is a
:class:`QueryError` that says at which character it fails.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

TEXT_FIELDS = ("details",)
EXACT_FIELDS = ("name", "namespace", "kind")
NUMERIC_FIELDS = ("generation", "priority")
FIELDS = (*TEXT_FIELDS, *EXACT_FIELDS, *NUMERIC_FIELDS)
DEFAULT_FIELD = "details"
MAX_CLAUSES = 64  # a query is typed by a person; more is an attack on the planner

_NUMBER = re.compile(r"-?[0-9]{1,18}")  # an int64, as kube counts generations
_COMPARISONS = (">=", "<=", ">", "<")


class Occur(enum.Enum):
    """How a clause takes part: ranks only (unless no clause must match), must, must not."""

    SHOULD = ""
    MUST = "+"
    MUST_NOT = "-"


@dataclass(frozen=True, slots=True)
class Words:
    """Text to find in a text field: its words, as a phrase when several (the engine splits
    them, as it split the indexed text); the last word a prefix if ``prefix``."""

    field: str
    text: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Exact:
    """The whole value of ``name``, ``namespace`` or ``kind``, or a prefix of it."""

    field: str
    value: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Range:
    """A number field within bounds (each None when open, inclusive when its flag says)."""

    field: str
    low: int | None
    high: int | None
    low_inclusive: bool = True
    high_inclusive: bool = True


Condition = Words | Exact | Range


@dataclass(frozen=True, slots=True)
class Clause:
    occur: Occur
    condition: Condition


@dataclass(frozen=True, slots=True)
class Query:
    clauses: tuple[Clause, ...]


class QueryError(ValueError):
    """A query that cannot be parsed; ``position`` is the 0-based character it fails at."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"{message} at character {position + 1}")
        self.position = position


def parse(text: str) -> Query:
    """The :class:`Query` of ``text``; raises :class:`QueryError`."""
    clauses = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            break
        clause, at = _clause(text, at)
        clauses.append(clause)
        if len(clauses) > MAX_CLAUSES:
            raise QueryError(at, f"more than {MAX_CLAUSES} clauses")
    if not clauses:
        raise QueryError(0, "an empty query")
    if all(c.occur is Occur.MUST_NOT for c in clauses):
        raise QueryError(0, "a query of only excluding (-) clauses matches nothing to exclude from")
    return Query(tuple(clauses))


def _clause(text: str, start: int) -> tuple[Clause, int]:
    at = start
    occur = Occur.SHOULD
    if text[at] in "+-":
        occur = Occur(text[at])
        at += 1
        if at == len(text) or text[at].isspace():
            raise QueryError(start, f"{text[start]!r} with nothing after it")
    field, value_at = _field(text, at)
    value, end = _value(text, value_at)
    return Clause(occur, _condition(field or DEFAULT_FIELD, value, value_at)), end


def _field(text: str, at: int) -> tuple[str | None, int]:
    """The field named before a ``:`` at ``at``, if any, and where its value starts."""
    end = at
    while end < len(text) and (text[end].isalnum() or text[end] in "_."):
        end += 1
    if end == at or end == len(text) or text[end] != ":":
        return None, at
    name = text[at:end]
    if name not in FIELDS:
        raise QueryError(at, f"unknown field {name!r} (fields: {', '.join(FIELDS)})")
    if end + 1 == len(text) or text[end + 1].isspace():
        raise QueryError(end, f"no value after {name}:")
    return name, end + 1


@dataclass(frozen=True, slots=True)
class _Value:
    text: str  # unescaped, without a prefix mark
    quoted: bool
    prefix: bool


def _value(text: str, at: int) -> tuple[_Value, int]:
    """The value at ``at`` and where it ends."""
    if text[at] == '"':
        out = []
        i = at + 1
        while i < len(text):
            if text[i] == "\\" and text[i + 1 : i + 2] in ('"', "\\"):
                out.append(text[i + 1])
                i += 2
            elif text[i] == '"':
                return _Value("".join(out), True, False), i + 1
            else:
                out.append(text[i])
                i += 1
        raise QueryError(at, "a phrase with no closing quote")
    out = []
    i = at
    while i < len(text) and not text[i].isspace():
        if text[i] == "\\":
            if i + 1 == len(text):
                raise QueryError(i, "a backslash with nothing to escape")
            out.append(text[i + 1])
            i += 2
            continue
        if text[i] == "*":
            if i + 1 < len(text) and not text[i + 1].isspace():
                raise QueryError(i, "a wildcard (*) only ends a value, as a prefix")
            return _Value("".join(out), False, True), i + 1
        out.append(text[i])
        i += 1
    return _Value("".join(out), False, False), i


def _condition(field: str, value: _Value, at: int) -> Condition:
    if field in NUMERIC_FIELDS:
        if value.quoted or value.prefix:
            raise QueryError(at, f"{field} takes a number, not text")
        return _range(field, value.text, at)
    if not value.text:
        raise QueryError(at, f"an empty value for {field}")
    if field in EXACT_FIELDS:
        exact = value.text.lower() if field == "kind" else value.text
        return Exact(field, exact, value.prefix)
    if not any(char.isalnum() for char in value.text):
        raise QueryError(at, f"{value.text!r} has no words to search (letters or digits)")
    # in "sample-*" the mark follows no word: it is the word "sample"
    return Words(field, value.text, value.prefix and value.text[-1].isalnum())


def _range(field: str, value: str, at: int) -> Range:
    comparison = next((c for c in _COMPARISONS if value.startswith(c)), "")
    number = value[len(comparison) :]
    if not _NUMBER.fullmatch(number):
        raise QueryError(at + len(comparison), f"{field} takes a whole number, not {number!r}")
    n = int(number)
    if comparison == "":
        return Range(field, n, n)
    if comparison[0] == ">":
        return Range(field, n, None, low_inclusive=comparison == ">=")
    return Range(field, None, n, high_inclusive=comparison == "<=")
