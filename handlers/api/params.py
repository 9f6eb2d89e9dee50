"""Query parameters, parsed with kube's rules and refused in kube's words before anything uses
them: integers are Go's int64 (400 with strconv's message), booleans are true unless ``0`` or
``false`` in any case (a bare ``?watch`` included), and the list options' combinations are
checked as ``ValidateListOptions`` checks them (422 on ``ListOptions.meta.k8s.io``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from handlers.api import metavalidation
from handlers.api.errors import ApiError, bad_request

INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
EXACT, NOT_OLDER_THAN = "Exact", "NotOlderThan"


def flag(query: Mapping[str, str], key: str) -> bool:
    """kube's boolean parameter: absent is false; any value but ``0`` or ``false`` is true."""
    value = query.get(key)
    return value is not None and value.lower() not in ("0", "false")


def int64(value: str) -> int:
    """Go's ``strconv.ParseInt(value, 10, 64)``."""
    return _parse_int(value, "strconv.ParseInt", -INT64_MAX - 1, INT64_MAX)


def _parse_int(value: str, parser: str, low: int, high: int) -> int:
    digits = value[1:] if value[:1] in ("+", "-") and low < 0 else value
    if not (digits.isascii() and digits.isdigit()):
        raise bad_request(f'{parser}: parsing "{value}": invalid syntax')
    number = int(value)
    if not low <= number <= high:
        raise bad_request(f'{parser}: parsing "{value}": value out of range')
    return number


def resource_version(value: str) -> int | None:
    """A resourceVersion to read at or from: None for "" and "0" (any), else kube's parse
    (an unsigned 64-bit integer; 400 otherwise)."""
    if value in ("", "0"):
        return None
    try:
        return _parse_int(value, "strconv.ParseUint", 0, UINT64_MAX)
    except ApiError as ex:
        raise bad_request(f'resourceVersion: Invalid value: "{value}": {ex.message}') from None


def non_negative(value: str, what: str) -> int:
    """A non-negative int64 (timeoutSeconds); kube's 400 when it is not one."""
    number = int64(value)
    if number < 0:
        raise bad_request(f'invalid {what} "{value}": must be a non-negative integer')
    return number


@dataclass(frozen=True, slots=True)
class ListOptions:
    """The options of a list or watch, parsed and validated."""

    label_selector: str = ""
    field_selector: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    limit: int | None = None  # None: the whole list
    continue_token: str = ""
    timeout_seconds: int | None = None
    allow_watch_bookmarks: bool = False
    send_initial_events: bool | None = None


def list_options(query: Mapping[str, str], *, watch: bool) -> ListOptions:
    """The list options of a request (400 for a malformed value, 422 for a forbidden
    combination, as kube-apiserver answers)."""
    limit = int64(query["limit"]) if query.get("limit") else 0
    timeout = query.get("timeoutSeconds")
    options = ListOptions(
        label_selector=query.get("labelSelector", ""),
        field_selector=query.get("fieldSelector", ""),
        resource_version=query.get("resourceVersion", ""),
        resource_version_match=query.get("resourceVersionMatch", ""),
        limit=limit if limit > 0 else None,  # kube pages only for a positive limit
        continue_token=query.get("continue", ""),
        timeout_seconds=non_negative(timeout, "timeoutSeconds") if timeout else None,
        allow_watch_bookmarks=flag(query, "allowWatchBookmarks"),
        send_initial_events=flag(query, "sendInitialEvents")
        if "sendInitialEvents" in query
        else None,
    )
    if problems := _watch_problems(options) if watch else _list_problems(options):
        raise invalid_options("ListOptions", problems)
    return options


def _list_problems(options: ListOptions) -> list[str]:
    """kube's ValidateListOptions for a list."""
    problems = []
    match = options.resource_version_match
    if match:
        if not options.resource_version:
            problems.append(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
                "resourceVersion is provided"
            )
        if options.continue_token:
            problems.append(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when "
                "continue is provided"
            )
        if match not in (EXACT, NOT_OLDER_THAN):
            problems.append(
                f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                f'"{EXACT}", "{NOT_OLDER_THAN}", ""'
            )
        if match == EXACT and options.resource_version == "0":
            problems.append(
                'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for '
                'resourceVersion "0"'
            )
    if options.send_initial_events is not None:
        problems.append("sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list")
    return problems


def _watch_problems(options: ListOptions) -> list[str]:
    """kube's ValidateListOptions for a watch, with the WatchList feature on (as in kube 1.35):
    ``sendInitialEvents`` only beside ``resourceVersionMatch=NotOlderThan``, and that only
    beside ``sendInitialEvents``."""
    problems = []
    match = options.resource_version_match
    if options.send_initial_events is not None and match != NOT_OLDER_THAN:
        problems.append(
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
            f"resourceVersionMatch to {NOT_OLDER_THAN}"
        )
    if match:
        if options.send_initial_events is None:
            problems.append(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch "
                "unless sendInitialEvents is provided"
            )
        if match != NOT_OLDER_THAN:
            problems.append(
                f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                f'"{NOT_OLDER_THAN}"'
            )
        if options.continue_token:
            problems.append(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when "
                "continue is provided"
            )
    return problems


_OPTIONS_KINDS = {
    "create": "CreateOptions",
    "update": "UpdateOptions",
    "patch": "PatchOptions",
    "delete": "DeleteOptions",
    "deletecollection": "DeleteOptions",
}
FIELD_VALIDATIONS = ("", "Ignore", "Strict", "Warn")


@dataclass(frozen=True, slots=True)
class WriteOptions:
    """The options of a write: ``dryRun``, ``fieldManager`` and ``fieldValidation`` ("" is
    the server's default)."""

    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = ""


NO_OPTIONS = WriteOptions()
_WRITE_KEYS = frozenset({"dryRun", "fieldManager", "fieldValidation"})


def write_options(query: Mapping[str, str], verb: str) -> WriteOptions:
    """A write's options, validated as kube's ValidateCreateOptions and its siblings do
    (422 on ``CreateOptions.meta.k8s.io`` and so on)."""
    if query.keys().isdisjoint(_WRITE_KEYS):
        return NO_OPTIONS  # most writes name none
    options = WriteOptions(
        dry_run="dryRun" in query,
        field_manager=query.get("fieldManager", ""),
        field_validation=query.get("fieldValidation", ""),
    )
    problems = []
    if options.dry_run and query["dryRun"] != "All":
        problems.append(
            f'dryRun: Unsupported value: []string{{"{query["dryRun"]}"}}: supported values: "All"'
        )
    if verb not in ("delete", "deletecollection"):
        problems += [
            f"{cause.field}: {cause.message}"
            for cause in metavalidation.field_manager(options.field_manager, "fieldManager")
        ]
        if options.field_validation not in FIELD_VALIDATIONS:
            supported = ", ".join(f'"{v}"' for v in FIELD_VALIDATIONS)
            problems.append(
                f'fieldValidation: Unsupported value: "{options.field_validation}": supported '
                f"values: {supported}"
            )
    if problems:
        raise invalid_options(_OPTIONS_KINDS.get(verb, "CreateOptions"), problems)
    return options


def invalid_options(kind: str, problems: list[str]) -> ApiError:
    """kube's 422 for request options: ``<Kind>.meta.k8s.io "" is invalid: ...``."""
    summary = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
    return ApiError(422, "Invalid", f'{kind}.meta.k8s.io "" is invalid: {summary}')
