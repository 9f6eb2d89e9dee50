"""CombinedTask: a Task custom resource of the cluster joined with its core Events."""

from typing import Any

from handlers import columns
from handlers.kinds import Kind
from handlers.tasks import DEADLINE, PRIORITY, SELECTABLE_FIELDS, SPEC_SCHEMA, STATE


def _events(obj: Any) -> Any:
    # not list(): the package's list module shadows the builtin here
    return (obj.get("status") or {}).get("events") or ()


def _count(obj: Any) -> int:
    return len(_events(obj))


def _last_reason(obj: Any) -> str:
    events = _events(obj)
    return str(events[-1].get("reason") or "") if events else ""


KIND = Kind(
    plural="combinedtasks",
    singular="combinedtask",
    kind="CombinedTask",
    namespaced=True,
    description=(
        "CombinedTask is a Task of example.example.com/v1 with the core Events recorded "
        "for it, read from the cluster."
    ),
    spec_schema=SPEC_SCHEMA,
    status_schema={
        "type": "object",
        "description": "What happened to the task.",
        "properties": {
            "events": {
                "type": "array",
                "description": (
                    "The core/v1 Events labelled example.example.com/task-uid=<the task's "
                    "uid>, oldest first."
                ),
                "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            }
        },
    },
    columns=(
        columns.NAME,
        PRIORITY,
        DEADLINE,
        STATE,
        columns.Column("Events", "integer", "Events recorded for the task.", _count),
        columns.Column("Last Event", "string", "Reason of the latest event.", _last_reason),
        columns.AGE,
    ),
    selectable_fields=SELECTABLE_FIELDS,
    categories=(),
)
