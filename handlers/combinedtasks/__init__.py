"""CombinedTask: a Task custom resource of the cluster joined with its core Events, read from
the cluster (never stored here): get, list and watch, each in its verb module; what they
share in :mod:`.join`, the watch's relay in :mod:`.relay`.

Imports: the vocabulary, ``handlers.tasks`` for the Task's shape, and ``k8s`` for the cluster.
Like every kind's ``__init__``, this one only declares: its verb modules become attributes of
the package (``list`` among them), so code here would see them in place of builtins.
"""

from handlers.api import columns
from handlers.api.kind import Kind
from handlers.combinedtasks.join import event_count, last_reason
from handlers.tasks import DEADLINE, PRIORITY, SELECTABLE_FIELDS, SPEC_SCHEMA, STATE

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
        columns.Column("Events", "integer", "Events recorded for the task.", event_count),
        columns.Column("Last Event", "string", "Reason of the latest event.", last_reason),
        columns.AGE,
    ),
    selectable_fields=SELECTABLE_FIELDS,
    categories=(),
)
