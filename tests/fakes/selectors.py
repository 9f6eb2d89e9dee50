"""Label and field selectors as kube-apiserver parses and applies them, for the fake cluster.

Written from kube's documented grammar and its apimachinery behaviour (``labels.Parse``,
``fields.ParseSelector``), not from this server's ``handlers/``: the fake checks that code, so
a bug there must not be mirrored here.

Labels: terms joined by commas, each ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a)``, ``k`` (exists), ``!k`` (absent), ``k>1`` or ``k<1`` (integers); whitespace
between tokens is ignored and commas inside parentheses belong to the value list. A missing
label satisfies ``!=`` and ``notin``. Fields: ``f=v``, ``f==v`` and ``f!=v`` terms joined by
commas (``\\``, ``\\,`` and ``\\=`` escape in values; nothing is trimmed); a field the resource
does not serve is kube's ``field label not supported``. Bad input is a 400 in kube's wording.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes.errors import bad_request

Getter = Callable[[Mapping[str, Any]], str]
"""Reads one selectable field of an object, as the string a field selector compares."""

_SPACE = " \t\r\n"
_SYMBOLS = "=!(),<>"
_INT64 = 2**63

_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


# -- labels ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector; ``operator`` is ``exists``, ``!``, ``=``, ``==``, ``!=``,
    ``in``, ``notin``, ``gt`` or ``lt``."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.key not in labels:
            return self.operator in ("!", "!=", "notin")
        value = labels[self.key]
        if self.operator in ("=", "==", "in"):
            return value in self.values
        if self.operator in ("!=", "notin"):
            return value not in self.values
        if self.operator in ("gt", "lt"):
            have, bound = _int64(value), _int64(self.values[0])
            if have is None or bound is None:
                return False
            return have > bound if self.operator == "gt" else have < bound
        return self.operator == "exists"


class _Syntax(Exception):
    """A requirement kube cannot parse; the message is kube's, without its prefix."""


class _Tokens:
    """kube's label lexer: symbols (``!=`` and ``==`` before one-character ones) and words,
    which run to whitespace or a symbol. ``in`` and ``notin`` are words; only the parser, in
    operator position, treats them as keywords."""

    def __init__(self, text: str) -> None:
        self.items: list[tuple[str, str]] = []  # (kind, text): kind is "word", "end" or a symbol
        at = 0
        while True:
            while at < len(text) and text[at] in _SPACE:
                at += 1
            if at == len(text):
                self.items.append(("end", ""))
                break
            if text[at] in _SYMBOLS:
                symbol = text[at : at + 2] if text[at : at + 2] in ("!=", "==") else text[at]
                self.items.append((symbol, symbol))
                at += len(symbol)
                continue
            start = at
            while at < len(text) and text[at] not in _SPACE and text[at] not in _SYMBOLS:
                at += 1
            self.items.append(("word", text[start:at]))
        self.at = 0

    def peek(self) -> tuple[str, str]:
        return self.items[self.at]

    def take(self) -> tuple[str, str]:
        item = self.items[self.at]
        self.at = min(self.at + 1, len(self.items) - 1)  # "end" repeats
        return item


def parse_labels(text: str) -> tuple[Requirement, ...]:
    """The requirements of a ``labelSelector`` (all must hold); a 400 when kube refuses it."""
    tokens = _Tokens(text)
    requirements: list[Requirement] = []
    while tokens.peek()[0] != "end":  # reached again only on an empty selector
        kind, literal = tokens.peek()
        if kind not in ("word", "!"):
            raise bad_request(f"found '{literal}', expected: !, identifier, or 'end of string'")
        try:
            requirements.append(_requirement(tokens))
        except _Syntax as why:
            raise bad_request(f"unable to parse requirement: {why}") from None
        kind, literal = tokens.take()
        if kind == "end":
            break
        if kind != ",":
            raise bad_request(f"found '{literal}', expected: ',' or 'end of string'")
        kind, literal = tokens.peek()
        if kind not in ("word", "!"):
            raise bad_request(f"found '{literal}', expected: identifier after ','")
    return tuple(requirements)


def _requirement(tokens: _Tokens) -> Requirement:
    absent = tokens.peek()[0] == "!"
    if absent:
        tokens.take()
    kind, key = tokens.take()
    if kind != "word":
        raise _Syntax(f"found '{key}', expected: identifier")
    problems = _key_problems(key)
    if problems:
        raise _Syntax(_invalid("<nil>", key, problems))
    if absent:
        return Requirement(key, "!")
    if tokens.peek()[0] in ("end", ","):
        return Requirement(key, "exists")
    kind, literal = tokens.take()
    if kind in ("=", "==", "!="):
        operator = kind
    elif kind in (">", "<"):
        operator = "gt" if kind == ">" else "lt"
    elif kind == "word" and literal in ("in", "notin"):
        operator = literal
    else:
        raise _Syntax(f"found '{literal}', expected: in, notin, =, ==, !=, gt, lt")
    values = _value_list(tokens) if operator in ("in", "notin") else _one_value(tokens)
    _check_values(key, operator, values)
    return Requirement(key, operator, values)


def _one_value(tokens: _Tokens) -> tuple[str, ...]:
    """The value after ``=``, ``==``, ``!=``, ``>`` or ``<``: a word, or empty before a comma
    or the end (``a=`` selects an empty value)."""
    if tokens.peek()[0] in ("end", ","):
        return ("",)
    kind, literal = tokens.take()
    if kind != "word":
        raise _Syntax(f"found '{literal}', expected: identifier")
    return (literal,)


def _value_list(tokens: _Tokens) -> tuple[str, ...]:
    """``( v, v, ... )``: any value may be empty (``()`` and ``(a,)`` hold the empty value)."""
    kind, literal = tokens.take()
    if kind != "(":
        raise _Syntax(f"found '{literal}' expected: '('")
    values: set[str] = set()
    while True:
        kind, literal = tokens.take()
        if kind == "word":
            values.add(literal)
            kind, literal = tokens.take()
        else:
            values.add("")
        if kind == ")":
            return tuple(sorted(values))
        if kind != ",":
            raise _Syntax(f"found '{literal}', expected: ',' or ')'")


def _check_values(key: str, operator: str, values: tuple[str, ...]) -> None:
    """kube's checks of a requirement's values: integers for gt/lt, label values for all."""
    errors: list[str] = []
    for index, value in enumerate(values):
        if operator in ("gt", "lt") and _int64(value) is None:
            errors.append(
                _invalid(
                    f"values[{index}]",
                    value,
                    ["for 'Gt', 'Lt' operators, the value must be an integer"],
                )
            )
    for index, value in enumerate(values):
        problems = ["must be no more than 63 characters"] if len(value) > 63 else []
        if value and not _NAME.fullmatch(value):
            problems.append(_VALUE_RULE)
        if problems:
            errors.append(_invalid(f"values[{index}][{key}]", value, problems))
    if len(errors) == 1:
        raise _Syntax(errors[0])
    if errors:
        raise _Syntax(f"[{', '.join(errors)}]")


def _key_problems(key: str) -> list[str]:
    """Why ``key`` is not a qualified name: an optional DNS-subdomain prefix and ``/``, then a
    name of at most 63 alphanumerics with ``-_.`` inside."""
    parts = key.split("/")
    if len(parts) > 2:
        return [
            f"a qualified name {_NAME_RULE} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    problems: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                problems.append("prefix part must be no more than 253 characters")
            if not _SUBDOMAIN.fullmatch(prefix):
                problems.append(f"prefix part {_SUBDOMAIN_RULE}")
    name = parts[-1]
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    if not _NAME.fullmatch(name):
        problems.append(f"name part {_NAME_RULE}")
    return problems


def _invalid(path: str, value: str, problems: list[str]) -> str:
    """A field.Invalid error as Go prints it."""
    return f"{path}: Invalid value: {json.dumps(value, ensure_ascii=False)}: {'; '.join(problems)}"


def _int64(text: str) -> int | None:
    """``text`` as Go's ``strconv.ParseInt(text, 10, 64)`` reads it; None when it cannot."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    number = int(text)
    return number if -_INT64 <= number < _INT64 else None


# -- fields ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldTerm:
    """One ``field=value`` (or ``==``) term, or ``field!=value`` when ``negated``."""

    field: str
    value: str
    negated: bool = False

    def matches(self, value: str) -> bool:
        return (value == self.value) != self.negated


def parse_fields(text: str, supported: Collection[str]) -> tuple[FieldTerm, ...]:
    """The terms of a ``fieldSelector`` (all must hold); a 400 for bad syntax, or for a field
    outside ``supported``, in kube's wording."""
    terms: list[FieldTerm] = []
    for part in sorted(_split_terms(text)):  # kube sorts: its first error is the first sorted
        if not part:
            continue
        operator = re.search(r"!=|==|=", part)
        if operator is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, value = part[: operator.start()], _unescape(part[operator.end() :])
        terms.append(FieldTerm(field, value, operator.group() == "!="))
    for term in terms:  # checked once parsed, as kube converts field labels after parsing
        if term.field not in supported:
            raise bad_request(f"field label not supported: {term.field}")
    return tuple(terms)


def _split_terms(text: str) -> list[str]:
    """Split on commas that no backslash escapes; escapes stay for ``_unescape``."""
    terms, start, escaped = [], 0, False
    for at, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:at])
            start = at + 1
    terms.append(text[start:])
    return terms


def _unescape(raw: str) -> str:
    """A field value with ``\\\\``, ``\\,`` and ``\\=`` unescaped; a bare ``,`` or ``=`` or any
    other escape is kube's 400."""
    out: list[str] = []
    escaped = False
    for char in raw:
        if escaped:
            if char not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(char)}")
        else:
            out.append(char)
    if escaped:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


# -- both -----------------------------------------------------------------------------------


def _metadata(key: str) -> Getter:
    def get(obj: Mapping[str, Any]) -> str:
        metadata = obj.get("metadata")
        value = metadata.get(key) if isinstance(metadata, Mapping) else None
        return "" if value is None else str(value)

    return get


METADATA_FIELDS: Mapping[str, Getter] = {
    "metadata.name": _metadata("name"),
    "metadata.namespace": _metadata("namespace"),
}
"""The fields every kind can be selected on."""


def selector(
    labels: str, fields: str, served: Mapping[str, Getter]
) -> Callable[[Mapping[str, Any]], bool]:
    """A ``labelSelector`` and a ``fieldSelector`` as one test of an object; the fields are
    ``metadata.name``, ``metadata.namespace`` and those ``served``. A bad selector raises
    :class:`tests.fakes.errors.StatusError` (400) here, before any object is looked at: kube
    refuses the request up front."""
    getters = {**METADATA_FIELDS, **served}
    label_terms = parse_labels(labels)
    field_terms = parse_fields(fields, getters)

    def selects(obj: Mapping[str, Any]) -> bool:
        metadata = obj.get("metadata")
        found = metadata.get("labels") if isinstance(metadata, Mapping) else None
        labelled: Mapping[str, str] = found if isinstance(found, Mapping) else {}
        return all(r.matches(labelled) for r in label_terms) and all(
            t.matches(getters[t.field](obj)) for t in field_terms
        )

    return selects
