"""Get a ClusterTask through its status subresource."""

from handlers.owned.get import handle

__all__ = ["handle"]
