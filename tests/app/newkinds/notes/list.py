"""List Notes."""

from handlers.owned.list import handle

__all__ = ["handle"]
