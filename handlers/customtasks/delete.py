"""Delete one CustomTask."""

from handlers.owned.delete import handle

__all__ = ["handle"]
