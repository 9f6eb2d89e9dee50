"""Patch the status of a ClusterTask."""

from handlers.owned import patch as handle

__all__ = ["handle"]
