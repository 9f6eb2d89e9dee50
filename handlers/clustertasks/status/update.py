"""Replace the status of a ClusterTask."""

from handlers.owned.update import handle

__all__ = ["handle"]
