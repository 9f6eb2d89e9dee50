"""The request as a policy's CEL sees it: the ``request`` variable (the AdmissionRequest kube
would send a webhook) and the ``authorizer`` (what the requesting user may do)."""

from __future__ import annotations

import uuid
from typing import Any

from handlers.admission.cel.authorizer import ALLOW, DENY
from handlers.api.admission import Attributes
from handlers.api.errors import ApiError
from handlers.api.users import Authorize


def request_of(attributes: Attributes) -> dict[str, Any]:
    """The ``request`` variable: the AdmissionRequest kube would send a webhook."""
    user = attributes.user
    kind = {"group": attributes.group, "version": attributes.version, "kind": attributes.kind}
    resource = {
        "group": attributes.group,
        "version": attributes.version,
        "resource": attributes.resource,
    }
    return {
        "uid": str(uuid.uuid4()),
        "kind": kind,
        "resource": resource,
        "subResource": attributes.subresource,
        "requestKind": kind,
        "requestResource": resource,
        "requestSubResource": attributes.subresource,
        "name": attributes.name,
        "namespace": attributes.namespace,
        "operation": attributes.operation,
        "userInfo": {
            "username": user.name if user else "",
            "uid": user.uid if user else "",
            "groups": list(user.groups) if user else [],
            "extra": {k: list(v) for k, v in user.extra.items()} if user else {},
        },
        "dryRun": attributes.dry_run,
        "options": dict(attributes.options),
    }


class RequestAuthorizer:
    """CEL's ``authorizer``: what the requesting user may do, asked as the request's own
    authorization asks (a SubjectAccessReview, cached). The reason of a denial is the
    refusal's whole message."""

    def __init__(self, authorize: Authorize) -> None:
        self._authorize = authorize

    def __call__(
        self,
        *,
        group: str,
        resource: str,
        subresource: str,
        namespace: str,
        name: str,
        verb: str,
        path: str = "",
    ) -> tuple[str, str]:
        try:
            if path:
                self._authorize(verb, path=path)
            else:
                self._authorize(
                    verb, group, resource, namespace, name=name, subresource=subresource
                )
        except ApiError as error:
            if error.code != 403:
                raise  # an errored check, as kube's authorizer error
            return DENY, error.message
        return ALLOW, ""
