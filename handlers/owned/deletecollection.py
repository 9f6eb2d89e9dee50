"""DELETE on the collection: every object the selectors match, as the namespace controller
needs."""

from __future__ import annotations

from handlers.api.contract import ApiRequest, Deps, ListResult
from handlers.api.errors import ApiError
from handlers.owned.selection import matcher
from handlers.owned.writing import delete_one, delete_options


def handle(request: ApiRequest, deps: Deps) -> ListResult:
    """The list of what was deleted (or marked for deletion)."""
    kind = request.kind
    options = delete_options(request)
    page = deps.store.list(kind.plural, request.namespace, match=matcher(request))
    deleted = []
    for row in page.rows:
        try:
            deleted.append(delete_one(request, row.namespace, row.name, options, deps)[0])
        except ApiError as ex:
            if ex.reason != "NotFound":  # gone meanwhile: nothing left to delete
                raise
    return ListResult(deps.store.revision(), deleted)
