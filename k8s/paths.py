"""Where the cluster objects this project reads and writes live: the tutorial's Task API
(``example.example.com/v1``) and core Events. One place for each path."""

from __future__ import annotations

TASK_GROUP = "example.example.com"
TASK_VERSION = "v1"
TASK_API = f"/apis/{TASK_GROUP}/{TASK_VERSION}"


def tasks(namespace: str | None = None, name: str = "") -> str:
    """The Tasks of ``namespace`` (None: of every namespace), or one of them by ``name``."""
    path = f"{TASK_API}/namespaces/{namespace}/tasks" if namespace else f"{TASK_API}/tasks"
    return f"{path}/{name}" if name else path


def events(namespace: str | None = None) -> str:
    """The core Events of ``namespace`` (None: of every namespace)."""
    return f"/api/v1/namespaces/{namespace}/events" if namespace else "/api/v1/events"
