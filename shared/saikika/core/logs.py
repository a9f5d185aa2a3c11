"""Structured JSON logs on stdout, in the shape Cloud Logging parses (`severity`, `message`)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: int | str = logging.INFO) -> None:
    """Route saikika's loggers to stdout as JSON lines. Safe to call more than once."""
    logger = logging.getLogger("saikika")
    if not any(getattr(h, "_saikika", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        handler._saikika = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)


def event(logger: logging.Logger, level: int, message: str, *, exc_info: bool = False, **fields: object) -> None:
    """One log line for one event, with the ids that trace an item through the loop (and, with `exc_info`, the
    traceback of the exception being handled, in the same line)."""
    logger.log(level, message, exc_info=exc_info, extra={"fields": fields})
