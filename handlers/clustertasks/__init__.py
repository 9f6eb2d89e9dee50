"""ClusterTask: the tutorial's Task, cluster-scoped, stored by this server.

Only its declaration lives here; its verbs are the one-line modules beside it, ``status/`` its
subresource, its rules the strategies ``handlers.tasks.task_kind`` declares. Only the registry
imports it.
"""

from handlers.tasks import task_kind

KIND = task_kind(
    plural="clustertasks",
    kind="ClusterTask",
    namespaced=False,
    short_names=("cltask",),
    description="ClusterTask is a cluster-scoped task stored by this API server.",
)
