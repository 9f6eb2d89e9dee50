"""Create a ClusterTask."""

from handlers.owned import create as handle

__all__ = ["handle"]
