"""Get one CombinedTask."""

from handlers.combined import get as handle

__all__ = ["handle"]
