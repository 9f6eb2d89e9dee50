"""Patch the status of a ClusterTask."""

from handlers.owned.patch import handle

__all__ = ["handle"]
