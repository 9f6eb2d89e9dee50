"""The Contexts alive, by key: the library holds no Python objects, so a library value that
reaches back to its request (the ``variables`` variable, an authorizer check) holds its
Context's key, and the Context is found again when a function is called on it."""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Mapping
from typing import Any, Protocol

from handlers.admission.cel.values import Refusal


class Request(Protocol):
    """What the library's functions reach of a Context
    (:class:`~handlers.admission.cel.expressions.Context`)."""

    @property
    def _variables(self) -> Mapping[str, object]: ...

    def _variable(self, name: str) -> tuple[str, Any]: ...

    def _authorize(
        self, user: list[str] | None, attributes: tuple[str, ...], verb: str, path: str
    ) -> dict[str, Any]: ...


_CONTEXTS: weakref.WeakValueDictionary[int, Request] = weakref.WeakValueDictionary()
_IDS = itertools.count(1)


def register(context: Request) -> int:
    """The key of a new Context, which it stays findable by while it lives."""
    key = next(_IDS)
    _CONTEXTS[key] = context
    return key


def find(key: int) -> Request:
    found = _CONTEXTS.get(key)
    if found is None:
        raise Refusal("the admission request of this value is over")
    return found
