"""Search the details: the hits of ``q`` the caller may see, best first, paged as lists are.

The caller needs ``get`` on ``details`` (kube-apiserver in front has already authorized the
path as ``list``, its verb for a collection), and sees a hit only if it may ``list`` that
resource in that namespace: the index is read with the server's identity, so a hit the caller
could not list itself is skipped, never shown (the page fills from the hits after it).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import orjson

from handlers.api.contract import ApiRequest, Deps, ListResult
from handlers.api.errors import ApiError, bad_request
from handlers.api.params import non_negative
from handlers.details.hits import Origin, item, origin
from store import Store
from store.fulltext import Hit
from store.search import Query, QueryError, parse

MAX_PLAIN_HITS = 10_000
"""The most keys a plain-text answer holds; more is a 400 that says how to page (the
tutorial's own limit of 100 never fired: its search stopped at 10)."""
FETCH = 500  # hits read per query while hits are skipped
_TOKEN_VERSION = "details/v1"

Cursor = tuple[float, str, str, str]


def handle(request: ApiRequest, deps: Deps) -> ListResult:
    request.authorize("get")
    text = request.param("q")
    if not text:
        raise bad_request("missing query parameter 'q'")
    try:
        query = parse(text)
    except QueryError as error:
        raise bad_request(f"invalid query: {error}") from None
    limit_param, token = request.param("limit"), request.param("continue")
    if request.plain and (limit_param or token):
        raise bad_request(
            "limit and continue page a JSON answer: ask with Accept: application/json"
        )
    limit = non_negative(limit_param, "limit") if limit_param else 0
    after = _decode(token, text) if token else None
    wanted = limit or (MAX_PLAIN_HITS if request.plain else None)
    hits: list[Hit] = []
    for hit in _visible(deps.store, query, after, request):
        if wanted is not None and len(hits) == wanted:
            if not limit:
                raise bad_request(
                    f"too many results (more than {MAX_PLAIN_HITS}): narrow the query, or page "
                    "through them as JSON (Accept: application/json, with limit and continue)"
                )
            last = hits[-1]
            return ListResult(
                "", [item(hit) for hit in hits], _encode((last.rank, *_key(last)), text)
            )
        hits.append(hit)
    return ListResult("", [item(hit) for hit in hits])


def _visible(
    store: Store, query: Query, after: Cursor | None, request: ApiRequest
) -> Iterator[Hit]:
    """The hits after ``after`` that the caller may list, best first, fetched in batches."""
    allowed: dict[tuple[str, str], bool] = {}
    while True:
        batch = store.search(query, FETCH, after)
        for hit in batch:
            scope = (hit.res, hit.namespace)
            if scope not in allowed:
                allowed[scope] = _may_list(request, origin(hit.res), hit.namespace)
            if allowed[scope]:
                yield hit
        if len(batch) < FETCH:
            return
        after = (batch[-1].rank, *_key(batch[-1]))


def _may_list(request: ApiRequest, found: Origin, namespace: str) -> bool:
    try:
        request.authorize("list", found.group, found.resource, namespace)
    except ApiError as error:
        if error.code == 403:
            return False
        raise  # a review that could not be made refuses the whole request
    return True


def _key(hit: Hit) -> tuple[str, str, str]:
    return hit.res, hit.namespace, hit.name


def _encode(cursor: Cursor, text: str) -> str:
    raw = orjson.dumps({"v": _TOKEN_VERSION, "q": _digest(text), "after": cursor})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(token: str, text: str) -> Cursor:
    """The hit a continue token resumes after; 400 when it is not one of ours or was made
    for another query."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        rank, res, namespace, name = data["after"]
        made_for = data["q"]
        ok = data["v"] == _TOKEN_VERSION and isinstance(rank, int | float)
        ok = ok and all(isinstance(part, str) for part in (res, namespace, name))
    except (ValueError, TypeError, KeyError):
        ok = False
    if not ok:
        raise bad_request("continue key is not valid")
    if made_for != _digest(text):
        raise bad_request("continue key was made for another query: start again without it")
    return float(rank), res, namespace, name


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
