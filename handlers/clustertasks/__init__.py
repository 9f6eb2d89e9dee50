"""ClusterTask: the tutorial's Task, cluster-scoped, stored by this server."""

from handlers.tasks import task_kind

KIND = task_kind(
    plural="clustertasks",
    kind="ClusterTask",
    namespaced=False,
    short_names=("cltask",),
    description="ClusterTask is a cluster-scoped task stored by this API server.",
)
