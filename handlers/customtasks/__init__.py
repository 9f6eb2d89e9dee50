"""CustomTask: the tutorial's Task, namespaced, stored by this server.

A declaration, one-line verb modules and ``status/``, as for ClusterTask; only the registry
imports it.
"""

from handlers.tasks import task_kind

KIND = task_kind(
    plural="customtasks",
    kind="CustomTask",
    namespaced=True,
    short_names=("cutask",),
    description="CustomTask is a namespaced task stored by this API server.",
)
