"""Label and field selectors with kube's grammar and error wording.

Label selectors are tokenized, not split on commas: ``a in (x,y),!b`` has commas inside
parentheses. Field selectors are ``key=value`` terms joined by commas, with ``\\`` escapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from handlers.api import names
from handlers.api.errors import ApiError, bad_request

_SYMBOLS = ("!=", "==", "=", "!", "(", ")", ",", ">", "<")


def valid_label_key(key: str) -> bool:
    """A qualified name: optional DNS-subdomain prefix (at most 253) and a name of at most 63."""
    return not names.qualified_name(key)


def valid_label_value(value: str) -> bool:
    """Empty, or at most 63 alphanumerics with ``-_.`` inside."""
    return not names.label_value(value)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One term of a label selector."""

    key: str
    operator: str  # exists, !, =, !=, in, notin, >, <
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        match self.operator:
            case "exists":
                return present
            case "!":
                return not present
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case _:
                if not present or not re.fullmatch(r"-?\d+", value):
                    return False
                bound = int(self.values[0])
                return int(value) > bound if self.operator == ">" else int(value) < bound


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of requirements; empty matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
        if symbol:
            out.append(symbol)
            i += len(symbol)
            continue
        start = i
        while i < len(text) and not text[i].isspace() and text[i] not in "!=(),<>":
            i += 1
        out.append(text[start:i])
    return out


def parse_label_selector(text: str) -> LabelSelector:
    """Parse kube's label selector grammar; raises a 400 ApiError on bad input."""
    tokens = _tokens(text)
    requirements: list[Requirement] = []
    pos = 0

    def fail(why: str) -> ApiError:
        return bad_request(f"unable to parse requirement: {why}")

    def take() -> str | None:
        nonlocal pos
        if pos >= len(tokens):
            return None
        pos += 1
        return tokens[pos - 1]

    def key_token(token: str | None) -> str:
        if token is None or token in _SYMBOLS:
            raise fail(f"found '{token or ''}', expected: identifier")
        if not valid_label_key(token):
            raise fail(
                f"invalid label key {token!r}: name part must consist of alphanumeric "
                "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                "character"
            )
        return token

    def value_token() -> str:
        value = (take() or "") if pos < len(tokens) and tokens[pos] not in _SYMBOLS else ""
        if not valid_label_value(value):
            raise fail(
                f"invalid label value: {value!r}: at most 63 characters, alphanumeric, "
                "'-', '_' or '.', starting and ending with an alphanumeric character"
            )
        return value

    while pos < len(tokens):
        token = take()
        if token == "!":
            requirements.append(Requirement(key_token(take()), "!"))
        else:
            key = key_token(token)
            op = tokens[pos] if pos < len(tokens) else None
            if op is None or op == ",":
                requirements.append(Requirement(key, "exists"))
            elif op in ("=", "==", "!="):
                take()
                requirements.append(Requirement(key, "!=" if op == "!=" else "=", (value_token(),)))
            elif op in ("in", "notin"):
                take()
                if take() != "(":
                    raise fail(
                        f"found '{tokens[pos - 1] if pos <= len(tokens) else ''}', expected: '('"
                    )
                values: list[str] = []
                while True:
                    values.append(value_token())
                    sep = take()
                    if sep == ")":
                        break
                    if sep != ",":
                        raise fail(f"found '{sep or ''}', expected: ',' or ')'")
                requirements.append(Requirement(key, op, tuple(values)))
            elif op in (">", "<"):
                take()
                bound = take() or ""
                if not re.fullmatch(r"-?\d+", bound):
                    raise fail(f"for '{op}' operator, the value must be an integer")
                requirements.append(Requirement(key, op, (bound,)))
            else:
                raise fail(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")
        if pos < len(tokens):
            if tokens[pos] != ",":
                raise fail(f"found '{tokens[pos]}', expected: ',' or 'end of string'")
            take()
            if pos >= len(tokens):
                raise fail("found 'end of string', expected: identifier")
    return LabelSelector(tuple(requirements))


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """One ``field=value`` or ``field!=value`` term."""

    field: str
    value: str
    negated: bool

    def matches(self, value: str) -> bool:
        return (value == self.value) != self.negated


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A conjunction of field terms."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, get: Callable[[str], str]) -> bool:
        return all(r.matches(get(r.field)) for r in self.requirements)

    def exact(self, field: str) -> str | None:
        """The value the selector pins ``field`` to, if any (e.g. metadata.name=x)."""
        for r in self.requirements:
            if r.field == field and not r.negated:
                return r.value
        return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    out, escaped = [], False
    for ch in text:
        if escaped:
            if ch not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    if escaped:
        raise bad_request("invalid field selector: unterminated escape sequence")
    return "".join(out)


def parse_field_selector(text: str, supported: Collection[str]) -> FieldSelector:
    """Parse a field selector; a field outside ``supported`` is a 400 in kube's wording."""
    requirements: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        if not term.strip():
            continue
        match = re.match(r"^(.*?)(!=|==|=)(.*)$", term)
        if not match:
            raise bad_request(f"invalid field selector: {term!r}: expected an operator")
        field, op, raw = match.group(1).strip(), match.group(2), match.group(3)
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        requirements.append(FieldRequirement(field, _unescape(raw), op == "!="))
    return FieldSelector(tuple(requirements))


def object_selector(
    labels: str, fields: str, getters: Mapping[str, Callable[[Mapping[str, Any]], str]]
) -> Callable[[Mapping[str, Any]], bool]:
    """``labelSelector`` and ``fieldSelector`` as a test of one object as the API returns it:
    fields are ``metadata.name``, ``metadata.namespace`` and those of ``getters``."""
    label_selector = parse_label_selector(labels)
    field_selector = parse_field_selector(fields, ("metadata.name", "metadata.namespace", *getters))

    def selects(obj: Mapping[str, Any]) -> bool:
        metadata = obj.get("metadata") or {}
        values = {
            "metadata.name": str(metadata.get("name", "")),
            "metadata.namespace": str(metadata.get("namespace", "")),
            **{field: get(obj) for field, get in getters.items()},
        }
        return label_selector.matches(metadata.get("labels") or {}) and field_selector.matches(
            lambda field: values.get(field, "")
        )

    return selects
