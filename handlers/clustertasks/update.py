"""Replace a ClusterTask (PUT)."""

from handlers.owned import update as handle

__all__ = ["handle"]
