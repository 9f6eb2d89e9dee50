"""LIST with label and field selectors, paging (continue tokens) and resourceVersion semantics."""

from __future__ import annotations

import base64
import binascii

import orjson

from handlers.api.contract import ApiRequest, Deps, ListResult
from handlers.api.errors import bad_request, expired, too_large_resource_version
from handlers.api.params import EXACT, list_options, resource_version
from handlers.owned.selection import matcher, narrowing
from store import Expired

PAGE_CAP = 2**31  # a page beyond any store; the store's LIMIT (an int64) asks one more
_CONTINUE_VERSION = "meta.k8s.io/v1"
_LATEST = -1  # a continue token's revision meaning "go on at the latest state"
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)


def handle(request: ApiRequest, deps: Deps) -> ListResult:
    """One page (or all) of the objects the selectors match, consistent at one revision."""
    kind = request.kind
    options = list_options(request.query, watch=False)
    match = matcher(request)
    limit = min(options.limit, PAGE_CAP) if options.limit else None
    version, token = options.resource_version, options.continue_token
    revision: int | None = None
    after: tuple[str, str] | None = None
    if token:
        if version:
            raise bad_request("specifying resource version is not allowed when using continue")
        revision, after = decode_continue(token)
        if revision == _LATEST:
            revision = None
    elif (wanted := resource_version(version)) is not None:
        current = deps.store.revision()
        if wanted > current:
            raise too_large_resource_version(wanted, current)
        match_rule = options.resource_version_match
        exact = match_rule == EXACT or (not match_rule and limit is not None)
        revision = wanted if exact else None

    try:
        page = deps.store.list(
            kind.plural,
            request.namespace,
            revision=revision,
            after=after,
            limit=limit,
            match=match,
            narrow=narrowing(request) if match else None,
        )
    except Expired:
        if token and after is not None:
            raise expired(_CONTINUE_EXPIRED, encode_continue(_LATEST, after)) from None
        raise expired("The resourceVersion for the provided list is too old.") from None
    next_token = encode_continue(page.revision, page.resume_after) if page.resume_after else ""
    return ListResult(page.revision, [row.body for row in page.rows], next_token)


def encode_continue(revision: int, after: tuple[str, str]) -> str:
    """An opaque continue token in kube's shape; revision -1 continues at the latest state."""
    raw = orjson.dumps({"v": _CONTINUE_VERSION, "rv": revision, "start": "/".join(after)})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    """The revision and key a continue token resumes from; 400 when it is not one of ours."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        revision, start = data["rv"], data["start"]
        if data.get("v") != _CONTINUE_VERSION or not isinstance(revision, int):
            raise ValueError("unknown token version")
        namespace, sep, name = start.partition("/")
        if not sep or not name or (revision <= 0 and revision != _LATEST):
            raise ValueError("bad start key")
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as ex:
        raise bad_request(f"continue key is not valid: {ex}") from None
    return revision, (namespace, name)
