"""List CombinedTasks (a page of Tasks with their Events)."""

from handlers.combined import list_ as handle

__all__ = ["handle"]
