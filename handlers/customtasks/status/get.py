"""Get a CustomTask through its status subresource."""

from handlers.owned import get as handle

__all__ = ["handle"]
