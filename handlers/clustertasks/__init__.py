"""ClusterTask: the tutorial's Task, cluster-scoped, stored by this server.

Declaration only: the verbs are the one-line modules beside this file (the generic verbs of
``handlers.owned``), ``status/`` is the status subresource, and what is particular to the kind
is in its strategies (declared by ``handlers.tasks.task_kind``).
"""

from handlers.tasks import task_kind

KIND = task_kind(
    plural="clustertasks",
    kind="ClusterTask",
    namespaced=False,
    short_names=("cltask",),
    description="ClusterTask is a cluster-scoped task stored by this API server.",
)
