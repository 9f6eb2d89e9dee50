"""Replace a Note (PUT)."""

from handlers.owned.update import handle

__all__ = ["handle"]
