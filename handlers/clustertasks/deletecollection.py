"""Delete every ClusterTask a selector matches."""

from handlers.owned import delete_collection as handle

__all__ = ["handle"]
