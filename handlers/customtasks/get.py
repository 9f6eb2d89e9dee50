"""Get one CustomTask."""

from handlers.owned import get as handle

__all__ = ["handle"]
