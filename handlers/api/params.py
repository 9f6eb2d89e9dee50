"""Query parameters shared by the verbs, parsed with kube's 400 on bad input."""

from __future__ import annotations

from handlers.api.errors import bad_request


def non_negative(value: str, what: str) -> int:
    """A non-negative integer parameter (limit, resourceVersion, timeoutSeconds)."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise bad_request(f'invalid {what} "{value}": must be a non-negative integer')
    return number
