"""The tutorial's Task, shared by ClusterTask and CustomTask (and CombinedTask's spec): spec
schema, columns, selectable fields, and the declaration of a kind stored here that carries it."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from handlers.api import columns
from handlers.api.kind import FieldGetter, Kind
from handlers.api.strategy import StatusStrategy, Strategy
from store.fulltext import task_document

SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "TaskSpec is the desired state of a task.",
    "required": ["deadline", "priority"],
    "properties": {
        "priority": {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "maximum": 10,
            "description": "Priority of the task, from 0 (lowest) to 10 (highest).",
        },
        "deadline": {
            "type": "string",
            "format": "date-time",
            "description": "When the task is due, as an RFC 3339 date-time.",
        },
        "details": {
            "type": "string",
            "description": "Free-form description of the work.",
        },
        "taskState": {
            "type": "string",
            "enum": ["Pending", "Finished"],
            "default": "Pending",
            "description": "Progress of the task: Pending (the default) or Finished.",
        },
    },
}

STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Observed state of the task, written by controllers.",
    "x-kubernetes-preserve-unknown-fields": True,
}


def _spec(obj: Mapping[str, Any], key: str) -> Any:
    return obj.get("spec", {}).get(key)


PRIORITY = columns.Column(
    "Priority", "integer", "Priority of the task (0-10).", lambda o: _spec(o, "priority")
)
DEADLINE = columns.Column(
    "Deadline", "string", "When the task is due.", lambda o: _spec(o, "deadline") or ""
)
STATE = columns.Column(
    "State", "string", "Pending or Finished.", lambda o: _spec(o, "taskState") or ""
)
COLUMNS = (
    columns.NAME,
    PRIORITY,
    DEADLINE,
    STATE,
    columns.AGE,
    columns.Column(
        "Details",
        "string",
        "Free-form description of the work.",
        lambda o: _spec(o, "details") or "",
        priority=1,
    ),
)

SELECTABLE_FIELDS: dict[str, FieldGetter] = {
    "spec.priority": lambda obj: str(_spec(obj, "priority")),
    "spec.taskState": lambda obj: str(_spec(obj, "taskState") or ""),
}


def task_kind(
    *, plural: str, kind: str, namespaced: bool, short_names: tuple[str, ...], description: str
) -> Kind:
    """Declare a kind that carries the Task spec and is stored by this server, its status
    written through its status subresource."""
    return Kind(
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        description=description,
        spec_schema=SPEC_SCHEMA,
        status_schema=STATUS_SCHEMA,
        columns=COLUMNS,
        short_names=short_names,
        selectable_fields=SELECTABLE_FIELDS,
        strategies={"": Strategy(), "status": StatusStrategy()},
        document=functools.partial(task_document, kind),
    )
