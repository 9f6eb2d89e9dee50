"""Values as the library holds them, and CEL's rules on them.

The library holds no Python objects and declares no new types, so a Quantity, URL, IP, CIDR or
authorizer value is a map with one private key (``@kubernetes...``) over its payload. Two
quantities are equal when their values are, as in kube; results turn them back into
:class:`~handlers.admission.cel.quantity.Quantity`, ``ipaddress`` objects and URL strings.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from handlers.admission.cel import quantity


class Refusal(Exception):
    """Raised by the library functions written here: becomes a CEL error value."""


QUANTITY, URL, IP, CIDR = "@kubernetes.Quantity", "@kubernetes.URL", "@net.IP", "@net.CIDR"
TIMESTAMP_TYPE, DURATION_TYPE = "google.protobuf.Timestamp", "google.protobuf.Duration"
NO_OVERLOAD = "no such overload"


def tagged(value: Any, tag: str) -> Any:
    """The payload of a library value of that kind, or a no-such-overload refusal."""
    if type(value) is dict and tag in value:
        return value[tag]
    raise Refusal(NO_OVERLOAD)


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, bytes | bytearray):
        return "bytes"
    return type(value).__name__


def equal(a: Any, b: Any) -> bool:
    """CEL's equality: numbers across int/uint/double, never a bool with a number."""
    kind = kind_of(a)
    if kind != kind_of(b):
        return False
    if kind == "list":
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if kind == "dict":
        return a.keys() == b.keys() and all(equal(v, b[k]) for k, v in a.items())
    return bool(a == b)


def compare(a: Any, b: Any) -> int:
    kind = kind_of(a)
    if kind != kind_of(b) or kind not in (
        "bool",
        "number",
        "bytes",
        "str",
        "datetime",
        "timedelta",
    ):
        raise Refusal(NO_OVERLOAD)
    if kind == "number" and (math.isnan(a) or math.isnan(b)):
        raise Refusal("NaN values cannot be ordered")
    return int((a > b) - (a < b))


def returnable(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.timedelta):
        raise Refusal("timestamps and durations cannot be returned by this function here")
    return value


def from_library(value: Any) -> Any:
    """A plain value of an evaluation's result: library values become Python objects."""
    if type(value) is dict:
        if len(value) == 1:
            (tag, payload), *_ = value.items()
            if type(tag) is str and tag in _PUBLIC:
                return _PUBLIC[tag](payload)
        return {k: from_library(v) for k, v in value.items()}
    if type(value) is list:
        return [from_library(v) for v in value]
    if type(value) is bytearray:
        return bytes(value)
    return value


_PUBLIC: dict[str, Callable[[Any], Any]] = {
    QUANTITY: quantity.parse,
    URL: str,
    IP: ipaddress.ip_address,
    CIDR: ipaddress.ip_interface,
}


def formattable(value: Any) -> Any:
    """Timestamps and durations, which cannot go back to CEL, as format's %s prints them."""
    if isinstance(value, datetime.datetime):  # RFC 3339, as Go prints it
        fraction = f".{value.microsecond:06d}".rstrip("0") if value.microsecond else ""
        return value.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    if isinstance(value, datetime.timedelta):
        micros = Decimal(value // datetime.timedelta(microseconds=1)).scaleb(-6)
        return f"{micros.normalize():f}s"
    if type(value) is list:
        return [formattable(v) for v in value]
    if type(value) is dict:
        return {k: formattable(v) for k, v in value.items()}
    return value


def succeeds(parse: Callable[[str], Any]) -> Callable[[str], bool]:
    def check(raw: str) -> bool:
        try:
            parse(raw)
        except Refusal:
            return False
        return True

    return check
