"""client-go's informer, small: a copy of one cluster collection, kept by a
:class:`k8s.reflector.Reflector` in a daemon thread and read from memory by any thread.

Admission reads the cluster's namespaces, policies and bindings on every write; kube's
plugins read them from informers so that a write costs no cluster call, and so do ours.
"""

from __future__ import annotations

import threading
from typing import Any

from k8s.client import Cluster
from k8s.reflector import Reflector

Key = tuple[str, str]
"""An object's namespace (``""`` at the cluster scope) and name."""


class Informer:
    """The objects at ``path``, as last listed and watched.

    ``synced`` is set once the first whole list is in; ``generation`` moves with every
    change, so a reader can keep what it derives from the objects (compiled policies) until
    the next one."""

    def __init__(self, cluster: Cluster, path: str, stop: threading.Event) -> None:
        self.path = path
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

    def _replace(self, objects: list[dict[str, Any]], revision: str) -> None:
        with self._lock:
            self._items = {_key(obj): obj for obj in objects}
            self.generation += 1
        self.synced.set()

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        with self._lock:
            if kind == "DELETED":
                self._items.pop(_key(obj), None)
            else:
                self._items[_key(obj)] = obj
            self.generation += 1


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")
