"""Patch a Note."""

from handlers.owned.patch import handle

__all__ = ["handle"]
