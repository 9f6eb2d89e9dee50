"""Replace the status of a CustomTask."""

from handlers.owned.update import handle

__all__ = ["handle"]
