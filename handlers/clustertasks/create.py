"""Create a ClusterTask."""

from handlers.owned.create import handle

__all__ = ["handle"]
