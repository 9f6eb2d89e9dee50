"""The kinds served, found under ``handlers/``: each declaration with the handlers of its verbs.

A kind's package declares ``KIND``; its verbs are exactly the verb modules present (adding a
verb is adding a file), and a subpackage (``status/``) is a subresource with verbs of its own.
This is the one module of ``handlers`` the front door imports besides the vocabulary, so the
proxy never names a kind.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass

from handlers.api.contract import Handler
from handlers.api.kind import Kind

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Served:
    """A kind as served: its declaration, the handler of each verb module present, and those
    of each subresource."""

    kind: Kind
    handlers: Mapping[str, Handler]
    subresources: Mapping[str, Mapping[str, Handler]]

    @property
    def verbs(self) -> list[str]:
        return sorted(self.handlers)

    def handler(self, verb: str, subresource: str | None) -> Handler | None:
        """The handler of ``verb`` on the resource itself or on one of its subresources."""
        verbs = self.subresources.get(subresource, {}) if subresource else self.handlers
        return verbs.get(verb)


def kinds_in(package_name: str) -> tuple[Served, ...]:
    """Every kind declared by a package under ``package_name``, in name order.

    A kind stored here must declare a strategy for itself and for each subresource present,
    and for nothing else: a mismatch fails at start, not on the first write."""
    package = importlib.import_module(package_name)
    served = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        name = f"{package_name}.{info.name}"
        kind: Kind | None = (
            getattr(importlib.import_module(name), "KIND", None) if info.ispkg else None
        )
        if kind is None:
            continue
        subresources = {sub: _verbs(f"{name}.{sub}") for sub in _subpackages(name)}
        if kind.strategies and set(kind.strategies) != {"", *subresources}:
            raise TypeError(
                f"{name}: strategies {sorted(kind.strategies)} do not match the resource and "
                f"its subresources {sorted(subresources)}"
            )
        served.append(Served(kind, _verbs(name), subresources))
    return tuple(served)


@functools.cache
def registry() -> tuple[Served, ...]:
    """The kinds under ``handlers/``."""
    return kinds_in("handlers")


def find(plural: str, kinds: tuple[Served, ...] | None = None) -> Served | None:
    """The kind served under ``plural``, if any."""
    return next((s for s in kinds or registry() if s.kind.plural == plural), None)


def _subpackages(package_name: str) -> list[str]:
    package = importlib.import_module(package_name)
    return [m.name for m in pkgutil.iter_modules(package.__path__) if m.ispkg]


def _verbs(package_name: str) -> dict[str, Handler]:
    """The ``handle`` of each verb module present in a package."""
    package = importlib.import_module(package_name)
    present = {m.name for m in pkgutil.iter_modules(package.__path__)}
    return {
        verb: importlib.import_module(f"{package_name}.{verb}").handle
        for verb in VERBS
        if verb in present
    }
