"""Delete a Note."""

from handlers.owned.delete import handle

__all__ = ["handle"]
