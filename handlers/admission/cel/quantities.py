"""kube's quantity library: ``quantity()``, ``isQuantity()`` and a Quantity's methods. A
quantity travels in CEL as its canonical text, parsed again by each method."""

from __future__ import annotations

from typing import Any

from handlers.admission.cel.quantity import Quantity, QuantityError, parse
from handlers.admission.cel.values import QUANTITY, Refusal, tagged


def quantity(raw: str) -> dict[str, Any]:
    try:
        return _as_value(parse(raw))
    except QuantityError as error:
        raise Refusal(str(error)) from None


def _as_value(q: Quantity) -> dict[str, Any]:
    return {QUANTITY: q.canonical()}


def of(value: Any) -> Quantity:
    return parse(tagged(value, QUANTITY))


def _of_or_int(value: Any) -> Quantity:
    return Quantity.from_int(value) if type(value) is int else of(value)


def add(a: Any, b: Any) -> dict[str, Any]:
    return _as_value(of(a).add(_of_or_int(b)))


def sub(a: Any, b: Any) -> dict[str, Any]:
    return _as_value(of(a).sub(_of_or_int(b)))


def as_integer(value: Any) -> int:
    number = of(value).as_int64()
    if number is None:
        raise Refusal("cannot convert value to integer")
    return number
