"""Property tests over our own OpenAPI document (schemathesis): its configuration and the checks
that hold the answers to kube's contract rather than to what a generic REST API would do.

The same configuration and checks serve the in-process fuzz (``tests/app``) and the run
against the real server (``tests/server``), so both prove one contract.

Which of schemathesis' built-in checks apply, and why the others do not:

- ``not_a_server_error``: applies, nothing we answer may be a 5xx.
- ``response_schema_conformance`` and ``content_type_conformance``: apply to the success
  codes the document declares; a watch is the exception (below).
- ``status_code_conformance``: does not apply. kube's documents declare only the success codes
  of each verb, and kube answers 400, 403, 404, 405, 409, 410, 415 and 422 without declaring
  them; our document is kube's in this (R3), so every error is checked as a Status instead.
- ``positive_data_acceptance``: does not apply. The schema cannot say what kube refuses of
  schema-valid input: a name that is no DNS subdomain (422), an object that is not there
  (404), a second create of one name (409), a selector that does not parse (400).
- ``negative_data_rejection``: does not apply. kube accepts input the schema calls invalid:
  unknown fields are dropped with a warning (``fieldValidation=Warn``, the default) and
  unknown query parameters are ignored.
- ``allow_header_conformance`` and ``unsupported_method``: do not apply. kube's 405 is a
  MethodNotAllowed Status without an ``Allow`` header.
- The stateful and authentication checks (``use_after_free``, ``ensure_resource_availability``,
  ``ignored_auth``, ``missing_required_header``): the document declares no links and no
  security schemes, so there is nothing for them to follow.

A watch (``?watch=true``) answers a stream of WatchEvents as ``application/json``, as
kube-apiserver does for JSON, under the list operation whose declared schema is the List:
its body is checked event by event (:func:`watch_events`), not against the List schema. Its
``timeoutSeconds`` is bounded (:func:`bound_watch`) so that each watch ends within a second,
and in-process the client reads it only for a moment (:func:`hanging_up`), as a client that
hangs up, so that a watch costs no more than a list.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import schemathesis
from hypothesis import strategies as st
from schemathesis import BaseSchema, Case, CheckContext, CheckFunction, HookContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

GV_PATH = "/openapi/v3/apis/search.task.example.example.com/v1"
SEED = 20_260_517
"""One seed for every run, so a failure seen once is seen again."""
CLUSTER_KINDS = "combinedtasks"
"""Kinds read from a cluster. The fuzz has none (the ``server`` fixture and the in-process app
run without one), so these answer 503 ServiceUnavailable by design; they are left out and
proven against the fake cluster in ``tests/kubectl/test_combinedtasks.py``."""

STATUS_REASONS = frozenset(
    {
        "",  # StatusReasonUnknown
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Invalid",
        "ServerTimeout",
        "StoreReadError",
        "Timeout",
        "TooManyRequests",
        "BadRequest",
        "MethodNotAllowed",
        "NotAcceptable",
        "RequestEntityTooLarge",
        "UnsupportedMediaType",
        "InternalError",
        "Expired",
        "ServiceUnavailable",
    }
)
"""Every ``metav1.StatusReason`` of k8s.io/apimachinery (``pkg/apis/meta/v1/types.go``)."""
WATCH_EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


def config(*, max_examples: int, coverage: bool) -> schemathesis.Config:
    """A fixed seed, derandomized Hypothesis, no example database (no files, no replay of
    another run's failures) and ``max_examples`` per operation in the fuzzing phase.

    The coverage phase (a fixed set of cases from the schema) only where asked, as it is the
    larger part of a run, and only its negative half: the type mutations and missing fields
    are what found the 500s, while its valid boundaries add little to what fuzzing sends."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "max-examples": max_examples,
                "deterministic": True,
                "database": "none",
            },
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": coverage, "generation": {"mode": "negative"}},
                "stateful": {"enabled": False},
            },
        }
    )


KUBE_VALUES = {
    "dryRun": ["All"],
    "fieldValidation": ["Ignore", "Warn", "Strict"],
    "propagationPolicy": ["Orphan", "Background", "Foreground"],
    "resourceVersionMatch": ["Exact", "NotOlderThan"],
}
"""The values kube takes for these string parameters (its documents say only "string")."""


def refined(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with :data:`KUBE_VALUES` as enums of those parameters.

    Without them, the valid cases send ``dryRun=`` and the like, which kube refuses (422)
    before it reads the body, so no body mutation would reach the code under test; the
    negative cases still send values outside the enums."""
    copy: dict[str, Any] = orjson.loads(orjson.dumps(document))
    for item in copy["paths"].values():
        for method, op in item.items():
            for param in item["parameters"] if method == "parameters" else op.get("parameters", []):
                if param["name"] in KUBE_VALUES:
                    param["schema"] = {**param["schema"], "enum": KUBE_VALUES[param["name"]]}
    return copy


def load(document: dict[str, Any], *, max_examples: int, coverage: bool) -> BaseSchema:
    """Our OpenAPI document for fuzzing (:func:`refined`), without the cluster's kinds,
    steered in part to the seeded objects (:func:`steered`)."""
    loaded = schemathesis.openapi.from_dict(
        refined(document), config=config(max_examples=max_examples, coverage=coverage)
    ).exclude(path_regex=CLUSTER_KINDS)

    @loaded.hook
    def flatmap_case(context: HookContext, case: Case[Any]) -> st.SearchStrategy[Case[Any]]:
        return st.booleans().map(lambda steer: steered(case) if steer else case)

    return loaded


SEEDED = "fuzz"
"""The name (and namespace) of the objects each run starts with (:func:`seeds`)."""


def seeds() -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object) of what to create before an operation is fuzzed: a
    ClusterTask and a CustomTask named :data:`SEEDED`, which the steered cases address."""
    base = "/apis/search.task.example.example.com/v1"
    spec = {"priority": 1, "deadline": "2030-01-01T00:00:00Z"}
    return [
        (f"{base}/clustertasks", {"metadata": {"name": SEEDED}, "spec": spec}),
        (
            f"{base}/namespaces/{SEEDED}/customtasks",
            {"metadata": {"name": SEEDED, "namespace": SEEDED}, "spec": spec},
        ),
    ]


def steered(case: Case[Any]) -> Case[Any]:
    """``case`` aimed at a seeded object, so that the success paths are fuzzed too: random
    names mostly meet 404 (or 422, for a name that is no DNS subdomain). The path names the
    seeded object; a body's metadata names it as well, or, on a create, asks for a generated
    name; the body stays as generated otherwise."""
    params = case.path_parameters or {}
    for key in ("name", "namespace"):
        if key in params:
            params[key] = SEEDED
    body = case.body
    found = body.get("metadata", {}) if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(found, dict):
        meta = dict(found)
        meta.pop("resourceVersion", None)
        meta.pop("uid", None)
        if case.method.upper() == "POST":
            meta.pop("name", None)
            meta["generateName"] = f"{SEEDED}-"
        else:
            meta["name"] = SEEDED
        if "namespace" in params:
            meta["namespace"] = SEEDED
        case.body = {**body, "metadata": meta}
    return case


def is_watch(case: Case[Any]) -> bool:
    """Whether the case asks for a watch, read as kube reads a boolean parameter
    (``Convert_Slice_string_To_bool``): its first value is true unless it is "0" or "false"."""
    value = (case.query or {}).get("watch")
    if value is None or value == []:  # not sent at all
        return False
    first = value[0] if isinstance(value, list) else value
    if isinstance(first, bool):
        return first
    return str(first) != "0" and str(first).lower() != "false"


def pin_revision(case: Case[Any], read: Callable[[str], str | None]) -> None:
    """Give a steered update the seeded object's ``resourceVersion``, as ``read`` finds it at
    its path now: kube takes no update of a custom resource without one."""
    body = case.body
    meta = body.get("metadata") if isinstance(body, dict) else None
    if (
        case.method.upper() == "PUT"
        and (case.path_parameters or {}).get("name") == SEEDED
        and isinstance(meta, dict)
        and meta.get("name") == SEEDED
        and (revision := read(case.formatted_path.removesuffix("/status")))
    ):
        meta["resourceVersion"] = revision


def may_watch(case: Case[Any]) -> bool:
    """Whether the case sends ``watch`` at all: whatever its value, the server might stream."""
    return "watch" in (case.query or {})


def bound_watch(case: Case[Any]) -> None:
    """Make a watch end after one second instead of kube's 30 to 60 minutes."""
    if may_watch(case):
        case.query = {**(case.query or {}), "timeoutSeconds": 1}


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def hanging_up(app: WSGIApp, patience: float = 0.05) -> WSGIApp:
    """``app`` as a client sees it that hangs up once nothing came for ``patience`` seconds.

    The body is drained in a thread of its own, which goes on to its end (``timeoutSeconds``)
    and closes it as a server would, while the client keeps what came before the pause: the
    headers, and the starting events a watch writes at once."""

    def called(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = app(environ, start_response)
        chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

        def drain() -> None:
            try:
                for chunk in body:
                    chunks.put(chunk)
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
                chunks.put(None)

        threading.Thread(target=drain, name="fuzz-watch", daemon=True).start()
        read: list[bytes] = []
        while True:
            try:
                chunk = chunks.get(timeout=patience)
            except queue.Empty:
                return read
            if chunk is None:
                return read
            read.append(chunk)

    return called


def checks(case: Case[Any]) -> list[CheckFunction]:
    """The checks for this case's response (see the module docstring)."""
    if is_watch(case):
        return [not_a_server_error, kube_status, watch_events]
    return [
        not_a_server_error,
        kube_status,
        response_schema_conformance,
        content_type_conformance,
    ]


def _status_problems(body: Any, code: int) -> list[str]:
    """What keeps ``body`` from being a failure ``metav1.Status`` of ``code``."""
    if not isinstance(body, dict):
        return [f"not a JSON object: {body!r}"]
    problems = []
    expected = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code}
    for key, value in expected.items():
        if body.get(key) != value:
            problems.append(f"{key} is {body.get(key)!r}, not {value!r}")
    if body.get("reason", "") not in STATUS_REASONS:
        problems.append(f"reason {body.get('reason')!r} is no metav1.StatusReason")
    if not isinstance(body.get("message"), str):
        problems.append(f"message {body.get('message')!r} is not a string")
    return problems


def kube_status(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every 4xx and 5xx is a JSON ``metav1.Status`` of that code with kube's reason (R3)."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith("application/json"):
        raise AssertionError(
            f"{response.status_code} is answered as {content_type!r}, not a JSON Status: "
            f"{response.content[:500]!r}"
        )
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise AssertionError(f"not JSON: {response.content[:500]!r}") from None
    if problems := _status_problems(body, response.status_code):
        raise AssertionError(
            f"{response.status_code} is no valid metav1.Status ({'; '.join(problems)}): {body}"
        )
    return None


def watch_events(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A watch's 200 is one WatchEvent per line: a known type and an object; an ERROR event
    carries a Status."""
    if response.status_code != 200:
        return None
    for line in response.content.splitlines():
        if not line.strip():
            continue
        event = orjson.loads(line)
        if not isinstance(event, dict) or event.get("type") not in WATCH_EVENT_TYPES:
            raise AssertionError(f"not a WatchEvent: {line[:500]!r}")
        obj = event.get("object")
        if not isinstance(obj, dict):
            raise AssertionError(f"a WatchEvent without an object: {line[:500]!r}")
        if event["type"] == "ERROR" and obj.get("kind") != "Status":
            raise AssertionError(f"an ERROR event without a Status: {line[:500]!r}")
    return None
