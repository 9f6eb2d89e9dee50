"""Patch the status of a CustomTask."""

from handlers.owned.patch import handle

__all__ = ["handle"]
