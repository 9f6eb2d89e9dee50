"""Watch CombinedTasks (the Task watch, joined with Events)."""

from handlers.combined import watch as handle

__all__ = ["handle"]
