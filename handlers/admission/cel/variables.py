"""Composited variables, lazy as in kube: compiling rewrites ``variables.name`` (and
``has(variables.name)``, ``variables.?name``, ``variables['name']``) into a call that has the
Context evaluate the variable on first use and remember its value or its error; an error reaches
only the expressions that read the variable, in kube's words (``composited variable "name" fails
to evaluate: ...``). A read is typed by the variable's expression, as kube types it;
timestamps, durations and optionals, which Python functions cannot hand back to CEL, travel as
strings or lists and the read converts them."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from handlers.admission.cel.contexts import Request, find
from handlers.admission.cel.values import (
    DURATION_TYPE,
    TIMESTAMP_TYPE,
    Refusal,
    formattable,
    tagged,
)

CONTEXT = "@vap.context"
"""The tag of the ``variables`` variable, whose payload is its Context's key."""

_TOKEN = re.compile(
    r"""(?P<space>\s+|//[^\n]*)
    |(?P<string>(?:[rR][bB]?|[bB][rR])(?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|"[^"\n]*")
      |[bB]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'
      |"(?:\\.|[^"\\\n])*"))
    |(?P<number>0[xX][0-9a-fA-F]+[uU]?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?|\.\d+(?:[eE][+-]?\d+)?)
    |(?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
    |(?P<quoted>`[^`]*`)
    |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)

_CASTS = frozenset({"bool", "int", "uint", "double", "string", "bytes"})


def _read(kind: str, name: str) -> str:
    """How an expression reads a variable of that kind: typed as kube types it, and, since
    Python functions cannot hand timestamps, durations or optionals to CEL, these travel as
    strings or lists."""
    plain = f"_vap_variable(variables, {name})"
    if kind in _CASTS:
        return f"{kind}({plain})"
    if kind == TIMESTAMP_TYPE:
        return f"timestamp(_vap_timestamp(variables, {name}))"
    if kind == DURATION_TYPE:
        return f"duration(_vap_duration(variables, {name}))"
    if kind.startswith("optional_type"):
        return f"(_vap_present(variables, {name}) ? optional.of({plain}) : optional.none())"
    return plain


def read_kind(output_type: str) -> str:
    """The kind of read (see _read) of a variable with that output type."""
    if output_type.startswith("optional_type") or output_type in _CASTS:
        return output_type
    return output_type if output_type in (TIMESTAMP_TYPE, DURATION_TYPE) else ""


_SIMPLE_STRING = re.compile(r"""(['"])[_a-zA-Z][_a-zA-Z0-9]*\1""")


class _Token(NamedTuple):
    kind: str
    text: str
    start: int
    end: int


def rewrite(text: str, kinds: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """``text`` with its reads of ``variables.<name>`` going through the Context (the form of
    a read depending on the variable's kind, see _read), and the names read."""
    if "variables" not in text:
        return text, ()
    tokens = [
        _Token(m.lastgroup or "", m[0], m.start(), m.end())
        for m in _TOKEN.finditer(text)
        if m.lastgroup != "space"
    ]
    edits: list[tuple[int, int, str]] = []
    names: dict[str, None] = {}
    for i, token in enumerate(tokens):
        if token.text != "variables" or (i and tokens[i - 1].text == "."):
            continue
        texts = [t.text for t in tokens[i + 1 : i + 5]]
        kinds_after = [t.kind for t in tokens[i + 1 : i + 5]]
        if texts[:2] == [".", "?"] and kinds_after[2:3] == ["ident"]:
            last, name, optional = i + 3, texts[2], True
        elif texts[:1] == ["."] and kinds_after[1:2] == ["ident"]:
            last, name, optional = i + 2, texts[1], False
        elif texts[:1] == ["["] and texts[2:3] == ["]"] and _SIMPLE_STRING.fullmatch(texts[1]):
            last, name, optional = i + 3, texts[1][1:-1], False
        else:
            continue
        names[name] = None
        quoted = f'"{name}"'
        around = [t.text for t in tokens[max(i - 3, 0) : i]]
        closing = tokens[last + 1 : last + 2]
        presence = around[-2:] == ["has", "("] and around[-3:-2] != ["."]
        if presence and not optional and [t.text for t in closing] == [")"]:
            has = f"_vap_has_variable(variables, {quoted})"
            edits.append((tokens[i - 2].start, closing[0].end, has))
            continue
        read = _read(kinds.get(name, ""), quoted)
        edits.append((token.start, tokens[last].end, f"optional.of({read})" if optional else read))
    for start, end, replacement in reversed(edits):
        text = text[:start] + replacement + text[end:]
    return text, tuple(names)


def reader(form: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    return lambda handle, name: form(find(tagged(handle, CONTEXT)), name)


def plain_variable(context: Request, name: str) -> Any:
    kind, value = context._variable(name)
    if kind.startswith("optional_type"):
        return value[0]
    if isinstance(value, datetime.datetime | datetime.timedelta):
        raise Refusal(f'composited variable "{name}" holds a timestamp or duration of type dyn')
    return value


def has_variable(context: Request, name: str) -> bool:
    if name not in context._variables:
        return False
    context._variable(name)
    return True


def present_variable(context: Request, name: str) -> bool:
    return bool(context._variable(name)[1])


def timestamp_variable(context: Request, name: str) -> str:
    return str(formattable(context._variable(name)[1]))


def duration_variable(context: Request, name: str) -> str:
    return f"{context._variable(name)[1] // datetime.timedelta(microseconds=1)}us"
