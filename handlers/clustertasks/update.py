"""Replace a ClusterTask (PUT)."""

from handlers.owned.update import handle

__all__ = ["handle"]
