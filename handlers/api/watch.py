"""The vocabulary of watches: an event, a BOOKMARK (the initial-events-end one included), the
410 of a compacted start, a lifetime."""

from __future__ import annotations

import random
from dataclasses import dataclass

import orjson

from handlers.api.errors import ApiError

MIN_LIFETIME, MAX_LIFETIME = 1800.0, 3600.0  # kube-apiserver's 30-60 minutes


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One event of a watch: its type and its object as JSON bytes."""

    type: str
    body: bytes


INITIAL_EVENTS_END = "k8s.io/initial-events-end"
"""The annotation of the BOOKMARK that ends a watch's initial events (WatchList)."""


def bookmark(
    kind: str, api_version: str, revision: int | str, *, initial_events_end: bool = False
) -> WatchEvent:
    """A BOOKMARK: everything up to ``revision`` was sent; with ``initial_events_end``, the one
    that tells a watch-list client its starting state is complete (an empty object of the
    kind, annotated, as kube's watch cache sends it)."""
    metadata: dict[str, object] = {"resourceVersion": str(revision)}
    if initial_events_end:
        metadata["annotations"] = {INITIAL_EVENTS_END: "true"}
    body = {"kind": kind, "apiVersion": api_version, "metadata": metadata}
    return WatchEvent("BOOKMARK", orjson.dumps(body))


def too_old(requested: int, oldest: int) -> WatchEvent:
    """The ERROR event of a watch whose start revision the log no longer holds."""
    status = ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})").status()
    return WatchEvent("ERROR", orjson.dumps(status))


def lifetime(seconds: int | None) -> float:
    """How long a watch lasts: ``timeoutSeconds``, or a random 30 to 60 minutes."""
    if not seconds:  # unset and 0 both mean the server's choice, as in kube
        return random.uniform(MIN_LIFETIME, MAX_LIFETIME)
    return float(seconds)
