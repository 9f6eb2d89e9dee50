"""Replace a CustomTask (PUT)."""

from handlers.owned.update import handle

__all__ = ["handle"]
