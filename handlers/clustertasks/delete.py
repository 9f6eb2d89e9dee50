"""Delete one ClusterTask."""

from handlers.owned.delete import handle

__all__ = ["handle"]
