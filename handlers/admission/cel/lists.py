"""kube's lists library (``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``,
``lastIndexOf``) and cel-go's lists and sets extensions, on CEL's equality and ordering."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

from handlers.admission.cel.values import NO_OVERLOAD, Refusal, compare, equal, kind_of, returnable


def is_sorted(items: list[Any]) -> bool:
    return all(compare(a, b) <= 0 for a, b in itertools.pairwise(items))


def sum_of(items: list[Any]) -> Any:
    if not items:
        return 0
    kinds = {type(item) for item in items}
    if kinds == {int}:
        total = sum(items)
        if not -(2**63) <= total < 2**63:
            raise Refusal("integer overflow")
        return total
    if kinds == {float}:
        return sum(items)
    raise Refusal(NO_OVERLOAD)


def extreme(name: str, prefer: int) -> Callable[[list[Any]], Any]:
    def pick(items: list[Any]) -> Any:
        if not items:
            raise Refusal(f"{name} called on empty list")
        best = items[0]
        for item in items[1:]:
            if compare(best, item) == prefer:
                best = item
        return returnable(best)

    return pick


def list_index(items: list[Any], value: Any) -> int:
    return next((i for i, item in enumerate(items) if equal(item, value)), -1)


def list_last_index(items: list[Any], value: Any) -> int:
    found = [i for i, item in enumerate(items) if equal(item, value)]
    return found[-1] if found else -1


def distinct(items: list[Any]) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if not any(equal(item, k) for k in kept):
            kept.append(item)
    return kept


def flatten(items: list[Any], depth: int = 1) -> list[Any]:
    if depth < 0:
        raise Refusal("level must be non-negative")
    flat: list[Any] = []
    for item in items:
        flat.extend(flatten(item, depth - 1) if type(item) is list and depth else [item])
    return flat


def slice_of(items: list[Any], start: int, end: int) -> list[Any]:
    if start < 0 or end < 0:
        raise Refusal(f"cannot slice({start}, {end}), negative indexes not supported")
    if start > end:
        raise Refusal(
            f"cannot slice({start}, {end}), start index must be less than or equal to end index"
        )
    if end > len(items):
        raise Refusal(f"cannot slice({start}, {end}), list is length {len(items)}")
    return items[start:end]


def sort(items: list[Any]) -> list[Any]:
    if len({kind_of(item) for item in items}) > 1:
        raise Refusal("list elements must have the same type")
    try:
        return sorted(items, key=functools.cmp_to_key(compare))
    except Refusal:
        raise Refusal("list elements must be comparable") from None


def includes(items: list[Any], value: Any) -> bool:
    return any(equal(item, value) for item in items)
