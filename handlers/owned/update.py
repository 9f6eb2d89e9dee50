"""PUT: replace an object if the body's resourceVersion is still current."""

from __future__ import annotations

from handlers.api.contract import ApiRequest, Deps, ObjectResult
from handlers.api.errors import Cause
from handlers.owned.validation import checked
from handlers.owned.writing import current, replace


def handle(request: ApiRequest, deps: Deps) -> ObjectResult:
    """The replaced object; 409 when it changed since the body's resourceVersion."""
    kind, name = request.kind, request.name or ""
    obj, warnings = checked(request, request.body)
    version = obj["metadata"].get("resourceVersion")
    if not version:
        raise kind.resource.invalid(
            name,
            [
                Cause(
                    "metadata.resourceVersion",
                    "FieldValueInvalid",
                    "Invalid value: 0x0: must be specified for an update",
                )
            ],
        )
    found = current(request, deps)
    if version != str(found.revision):
        raise kind.resource.conflict(name)
    return replace(request, deps, found, obj, warnings)
