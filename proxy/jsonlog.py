"""Log records as JSON lines on stdout, like the request log: one object per line, so a
cluster's log pipeline reads gunicorn's own messages and the server's warnings as data."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from gunicorn import glogging


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "pid", "message"}``, ``error`` with a traceback, and the
    figures a record carries as ``extra={"fields": {...}}`` (for a log pipeline to chart)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def gunicorn_config(level: str = "INFO") -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: every logger, gunicorn's included, as JSON to stdout."""
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stdout": handler},
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stdout"], "propagate": False},
            # the app logs each request itself, as JSON with the user and the verb
            "gunicorn.access": {"level": level, "handlers": [], "propagate": False},
        },
    }


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger without its access log: given a logging configuration, gunicorn would
    gather every request's atoms (a tenth of what it spends on a request) and hand them to a
    logger without a handler. The app writes its own request lines (``RequestLog``)."""

    access_log_enabled = False
