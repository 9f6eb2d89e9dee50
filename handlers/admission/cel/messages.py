"""The library's error messages in cel-go's and kube's words: policies' messages and their tests
quote kube's wording, which the library's own differs from."""

from __future__ import annotations

import re
from collections.abc import Callable

_STATUS = re.compile(r"^[A-Z][A-Z_]+: ")
_STATUS_END = re.compile(r" \[[A-Z][A-Z_]+\]$")
_OVERLOAD = re.compile(r"No matching overloads found : (?:\((\w+)\)\.)?([^(]+)\((.*)\)")
_WORDING: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r'Key not found in map : "?(.*?)"?'), lambda m: f"no such key: {m[1]}"),
    (re.compile(r"Index error: index=(-?\d+) size=\d+"), lambda m: f"index out of bounds: {m[1]}"),
    (re.compile(r"divide by zero"), lambda m: "division by zero"),
    (
        re.compile(r"Applying SELECT to non-message type|Invalid container type: .*"),
        lambda m: "no such key",
    ),
)


def clean(message: str) -> str:
    """The library's message without its status code, worded as cel-go's where they differ."""
    message = _STATUS_END.sub("", _STATUS.sub("", message, count=1))
    if overload := _OVERLOAD.fullmatch(message):
        receiver, function, args = overload.groups()
        if function[0] in "_@!":
            return "no such overload"
        signature = ", ".join(t for t in (receiver, args) if t).replace("int64", "int")
        return f"no such overload: {function}({signature})"
    for pattern, word in _WORDING:
        if found := pattern.fullmatch(message):
            return word(found)
    return message


_UNDECLARED = re.compile(
    r"ERROR: <input>:(\d+):(\d+): undeclared reference to '([^'.]+)\.([^']+)' "
    r"(\(in container '[^']*'\)\n \| )(.*)\n \| \.*\^"
)


def _first_undeclared(found: re.Match[str]) -> str:
    """cel-go names the first undeclared identifier of ``a.b.c``, where this library names the
    whole selection at its last dot."""
    line, column, first, rest, middle, source = found.groups()
    dot = int(column) - 1
    selected = f"{first}.{rest}".rpartition(".")[0]
    start = dot - len(selected)
    if start < 0 or source[start:dot] != selected:
        return found[0]
    return (
        f"ERROR: <input>:{line}:{start + 1}: undeclared reference to '{first}' "
        f"{middle}{source}\n | {'.' * start}^"
    )


def compile_message(error: Exception) -> str:
    message = _STATUS_END.sub("", _STATUS.sub("", str(error), count=1))
    return "compilation failed: " + _UNDECLARED.sub(_first_undeclared, message)


def go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
