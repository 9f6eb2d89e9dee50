"""kube's regex library (``find``, ``findAll``): Python's ``re`` standing in for Go's RE2
syntax."""

from __future__ import annotations

import functools
import re

from handlers.admission.cel.values import Refusal


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern.replace(r"\z", r"\Z"))
    except re.error as error:
        raise Refusal(f"Illegal regex: error parsing regexp: {error.msg}") from None


def find(text: str, pattern: str) -> str:
    found = _regex(pattern).search(text)
    return found[0] if found else ""


def find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    """Go's FindAllString: an empty match right after a previous match does not count."""
    regex, pos, previous_end = _regex(pattern), 0, -1
    found: list[str] = []
    while pos <= len(text) and (limit < 0 or len(found) < limit):
        match = regex.search(text, pos)
        if match is None:
            break
        start, end = match.span()
        if end == start:
            if start != previous_end:
                found.append("")
            pos = end + 1
        else:
            found.append(match[0])
            pos = end
        previous_end = end
    return found
