"""client-go's informer, small: a copy of one cluster collection, kept by a
:class:`k8s.reflector.Reflector` in a daemon thread and read from memory by any thread.

Admission reads the cluster's namespaces, policies and bindings on every write; kube's
plugins read them from informers so that a write costs no cluster call, and so do ours. The
Task controller is told of every change through the handlers (``on_list``, ``on_change``), as
client-go's event handlers are, and reads the object itself from here when it gets to it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from k8s.client import Cluster
from k8s.reflector import Reflector

Key = tuple[str, str]
"""An object's namespace (``""`` at the cluster scope) and name."""
OnList = Callable[[Iterable[Key]], None]
"""After a whole list: the keys of the objects listed and of those gone since the last one."""
OnChange = Callable[[Key], None]
"""After one watched change (added, modified or deleted): the object's key."""


def _ignore(_: object) -> None:
    pass


class Informer:
    """The objects at ``path``, as last listed and watched.

    ``synced`` is set once the first whole list is in; ``generation`` moves with every
    change, so a reader can keep what it derives from the objects (compiled policies) until
    the next one."""

    def __init__(
        self,
        cluster: Cluster,
        path: str,
        stop: threading.Event,
        *,
        on_list: OnList = _ignore,
        on_change: OnChange = _ignore,
    ) -> None:
        self.path = path
        self._on_list = on_list
        self._on_change = on_change
        self.synced = threading.Event()
        self.generation = 0
        self._items: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._reflector = Reflector(
            cluster, path, replace=self._replace, apply=self._apply, stop=stop
        )

    def start(self) -> Informer:
        """Follow the collection in a daemon thread."""
        name = f"informer {self.path}"
        threading.Thread(target=self._reflector.run, name=name, daemon=True).start()
        return self

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as last seen (shared: never change it), or None."""
        return self._items.get((namespace, name))

    def items(self) -> list[dict[str, Any]]:
        """Every object as last seen (shared: never change them)."""
        with self._lock:
            return list(self._items.values())

    def every_key(self) -> list[Key]:
        """The key of every object as last seen."""
        with self._lock:
            return list(self._items)

    def _replace(self, objects: list[dict[str, Any]], revision: str) -> None:
        listed = {_key(obj): obj for obj in objects}
        with self._lock:
            gone, self._items = self._items, listed
            self.generation += 1
        self.synced.set()
        self._on_list(listed.keys() | gone.keys())

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        with self._lock:
            if kind == "DELETED":
                self._items.pop(_key(obj), None)
            else:
                self._items[_key(obj)] = obj
            self.generation += 1
        self._on_change(_key(obj))


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")
