"""Get a ClusterTask through its status subresource."""

from handlers.owned import get as handle

__all__ = ["handle"]
