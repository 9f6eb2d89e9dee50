"""cel-go's strings extension (``ext.Strings``) as kube declares it (version 2, plus
``reverse``), with cel-go's errors; ``format`` is done by the library's own extension."""

from __future__ import annotations

import functools
from typing import Any

from cel_expr_python import cel  # type: ignore[import-untyped]
from cel_expr_python.ext import ext_strings  # type: ignore[import-untyped]

from handlers.admission.cel.messages import clean
from handlers.admission.cel.values import Refusal, formattable

LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008" + (
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_QUOTED = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_QUOTED |= {"\v": "\\v", "\\": "\\\\", '"': '\\"'}


def _out_of_range(index: int) -> Refusal:
    return Refusal(f"index out of range: {index}")


def char_at(text: str, index: int) -> str:
    if not 0 <= index <= len(text):
        raise _out_of_range(index)
    return text[index : index + 1]


def index_of(text: str, sub: str, offset: int = 0) -> int:
    if offset < 0:
        raise _out_of_range(offset)
    if not sub:
        return min(offset, len(text))
    return -1 if offset >= len(text) else text.find(sub, offset)


def last_index_of(text: str, sub: str, offset: int | None = None) -> int:
    if offset is None:
        return text.rfind(sub)
    if offset < 0:
        raise _out_of_range(offset)
    if not sub:
        return min(offset, len(text))
    return -1 if offset >= len(text) else text.rfind(sub, 0, offset + len(sub))


def split(text: str, sep: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    if sep:
        return text.split(sep, limit - 1 if limit > 0 else -1)
    chars = list(text)
    if 0 < limit < len(chars):
        chars[limit - 1 :] = ["".join(chars[limit - 1 :])]
    return chars


def substring(text: str, start: int, end: int | None = None) -> str:
    if end is not None and start > end:
        raise Refusal(f"invalid substring range. start: {start}, end: {end}")
    for index in (start, end):
        if index is not None and not 0 <= index <= len(text):
            raise _out_of_range(index)
    return text[start:end]


def join(items: list[Any], sep: str = "") -> str:
    for item in items:
        if type(item) is not str:
            raise Refusal(f"join: invalid input: {item}")
    return sep.join(items)


def quote(text: str) -> str:
    return '"' + "".join(_QUOTED.get(c, c) for c in text) + '"'


@functools.cache
def _formatter() -> Any:
    env = cel.NewEnv(
        variables={"f": cel.Type.STRING, "a": cel.Type.List(cel.Type.DYN)},
        extensions=[ext_strings.ExtStrings()],
    )
    return env.compile("f.format(a)")


def formatted(text: str, args: list[Any]) -> str:
    result = _formatter().eval(data={"f": text, "a": formattable(args)})
    if result.type().name() == "ERROR":
        raise Refusal(clean(result.value()))
    return str(result.value())
