"""Get one CustomTask."""

from handlers.owned.get import handle

__all__ = ["handle"]
