"""Watch Notes."""

from handlers.owned.watch import handle

__all__ = ["handle"]
