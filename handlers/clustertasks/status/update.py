"""Replace the status of a ClusterTask."""

from handlers.owned import update as handle

__all__ = ["handle"]
