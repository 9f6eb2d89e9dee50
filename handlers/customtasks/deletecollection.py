"""Delete every CustomTask a selector matches."""

from handlers.owned.deletecollection import handle

__all__ = ["handle"]
