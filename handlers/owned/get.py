"""GET one object."""

from __future__ import annotations

from handlers.api.contract import ApiRequest, Deps, ObjectResult
from handlers.owned.writing import current


def handle(request: ApiRequest, deps: Deps) -> ObjectResult:
    """The object, as stored."""
    return ObjectResult(current(request, deps).body)
