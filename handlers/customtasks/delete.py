"""Delete one CustomTask."""

from handlers.owned import delete as handle

__all__ = ["handle"]
