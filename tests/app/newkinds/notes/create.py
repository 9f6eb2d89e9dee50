"""Create a Note."""

from handlers.owned.create import handle

__all__ = ["handle"]
