"""Delete one ClusterTask."""

from handlers.owned import delete as handle

__all__ = ["handle"]
