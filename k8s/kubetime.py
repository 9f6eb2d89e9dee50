"""kube's two timestamp formats, written in UTC: ``Time`` (seconds) and ``MicroTime``."""

from __future__ import annotations

from datetime import UTC, datetime


def seconds_time(at: datetime | None = None) -> str:
    """kube's Time, ``2006-01-02T15:04:05Z`` (now, unless ``at`` is given)."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(at: datetime | None = None) -> str:
    """kube's MicroTime, ``2006-01-02T15:04:05.000000Z`` (now, unless ``at`` is given)."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
