"""List CustomTasks."""

from handlers.owned import list_objects as handle

__all__ = ["handle"]
