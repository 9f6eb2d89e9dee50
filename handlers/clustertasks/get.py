"""Get one ClusterTask."""

from handlers.owned.get import handle

__all__ = ["handle"]
