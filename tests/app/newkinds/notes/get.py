"""Get a Note."""

from handlers.owned.get import handle

__all__ = ["handle"]
