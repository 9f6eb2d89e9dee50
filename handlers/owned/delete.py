"""DELETE one object."""

from __future__ import annotations

from handlers.api.contract import ApiRequest, Deps, ObjectResult
from handlers.owned.writing import delete_one, delete_options


def handle(request: ApiRequest, deps: Deps) -> ObjectResult:
    """200 with the object's last state (or, with finalizers, the object marked for deletion)."""
    options = delete_options(request)
    return ObjectResult(
        delete_one(request.kind, request.namespace or "", request.name or "", options, deps)
    )
