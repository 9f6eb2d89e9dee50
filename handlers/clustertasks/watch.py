"""Watch ClusterTasks."""

from handlers.owned import watch as handle

__all__ = ["handle"]
