"""kube's name rules (``k8s.io/apimachinery/pkg/util/validation``), each answering the list of
what is wrong in kube's words: an empty list means valid.

Every pattern is matched whole (``fullmatch``): a ``$`` would let a trailing newline through.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = rf"{_LABEL_FMT}(\.{_LABEL_FMT})*"
_QUALIFIED_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = f"({_QUALIFIED_FMT})?"

_LABEL = re.compile(_LABEL_FMT)
_SUBDOMAIN = re.compile(_SUBDOMAIN_FMT)
_QUALIFIED = re.compile(_QUALIFIED_FMT)
_LABEL_VALUE = re.compile(_LABEL_VALUE_FMT)

LABEL_MAX = 63
SUBDOMAIN_MAX = 253


REMEMBERED = 4096


class _RemembersValid:
    """A check answering at once for a value it passed before: labels, namespaces and
    finalizers repeat from object to object, and every write checks them. Only valid values
    are kept, and kube's limits keep them short (317 characters at most): 4,096 of them take
    under 2 MB."""

    def __init__(self, check: Callable[[str], list[str]]) -> None:
        self._check = check
        self.valid: set[str] = set()
        functools.update_wrapper(self, check)

    def __call__(self, value: str) -> list[str]:
        if value in self.valid:
            return []
        problems = self._check(value)
        if not problems:
            if len(self.valid) >= REMEMBERED:
                self.valid.clear()
            self.valid.add(value)
        return problems


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    """kube's RegexError: the rule, examples, and the pattern."""
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_length(limit: int) -> str:
    return f"must be no more than {limit} characters"


_QUALIFIED_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)


@_RemembersValid
def dns1123_label(value: str) -> list[str]:
    """A namespace's name (at most 63 lowercase alphanumerics and '-')."""
    problems = [_max_length(LABEL_MAX)] if len(value) > LABEL_MAX else []
    if not _LABEL.fullmatch(value):
        problems.append(
            _regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                "or '-', and must start and end with an alphanumeric character",
                _LABEL_FMT,
                "my-name",
                "123-abc",
            )
        )
    return problems


@_RemembersValid
def dns1123_subdomain(value: str) -> list[str]:
    """An object's name (at most 253 characters, dot-separated labels)."""
    problems = [_max_length(SUBDOMAIN_MAX)] if len(value) > SUBDOMAIN_MAX else []
    if not _SUBDOMAIN.fullmatch(value):
        problems.append(
            _regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
                _SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return problems


@_RemembersValid
def qualified_name(value: str) -> list[str]:
    """A label or annotation key, or a finalizer: an optional DNS subdomain prefix and '/',
    then a name of at most 63 characters."""
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_MSG, _QUALIFIED_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    problems = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            problems += [f"prefix part {p}" for p in dns1123_subdomain(prefix)]
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > LABEL_MAX:
        problems.append(f"name part {_max_length(LABEL_MAX)}")
    if not _QUALIFIED.fullmatch(name):
        problems.append(
            "name part "
            + _regex_error(_QUALIFIED_MSG, _QUALIFIED_FMT, "MyName", "my.name", "123-abc")
        )
    return problems


@_RemembersValid
def label_value(value: str) -> list[str]:
    """Empty, or at most 63 alphanumerics with '-', '_' or '.' inside."""
    problems = [_max_length(LABEL_MAX)] if len(value) > LABEL_MAX else []
    if not _LABEL_VALUE.fullmatch(value):
        problems.append(
            _regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return problems
