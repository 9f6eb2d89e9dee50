"""Watch CustomTasks."""

from handlers.owned import watch as handle

__all__ = ["handle"]
