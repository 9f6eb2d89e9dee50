"""Patch the status of a CustomTask."""

from handlers.owned import patch as handle

__all__ = ["handle"]
