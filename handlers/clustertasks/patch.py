"""Patch a ClusterTask (JSON merge patch or JSON patch)."""

from handlers.owned import patch as handle

__all__ = ["handle"]
