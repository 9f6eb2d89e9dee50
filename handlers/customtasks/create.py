"""Create a CustomTask."""

from handlers.owned.create import handle

__all__ = ["handle"]
