"""DELETE one object."""

from __future__ import annotations

from handlers.api.contract import ApiRequest, Deps, ObjectResult
from handlers.owned.writing import delete_one, delete_options


def handle(request: ApiRequest, deps: Deps) -> ObjectResult:
    """200 with the object's last state (or, with finalizers, the object marked for deletion);
    202 when ``orphanDependents: false`` asked for dependents to go and the object stays for
    them, as kube answers."""
    options = delete_options(request)
    body, gone = delete_one(request, request.namespace or "", request.name or "", options, deps)
    accepted = not gone and options.get("orphanDependents") is False
    return ObjectResult(body, 202 if accepted else 200)
