"""Replace the status of a CustomTask."""

from handlers.owned import update as handle

__all__ = ["handle"]
