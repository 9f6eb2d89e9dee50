"""Patch a CustomTask (JSON merge patch or JSON patch)."""

from handlers.owned.patch import handle

__all__ = ["handle"]
