"""Logging for the entry points: one line per event, text or JSON, with run id and source id.

    configure_logging("json", logging.INFO)       # in main(), never at import time
    with bind_run(run_id): ...                    # records inside carry "run_id"

A record's ``source_id`` comes from ``extra={"source_id": ...}``, from the ``source_id``
context variable, or from the Scrapy spider the record names (``extra={"spider": spider}``,
which Scrapy's own messages and ``spider.logger`` carry; each spider crawls one source).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

__all__ = [
    "RUN_ID",
    "SOURCE_ID",
    "ContextFilter",
    "JsonFormatter",
    "TextFormatter",
    "bind_run",
    "bind_source",
    "configure_logging",
]

RUN_ID: ContextVar[int | None] = ContextVar("dwatch_run_id", default=None)
SOURCE_ID: ContextVar[str | None] = ContextVar("dwatch_source_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ContextFilter(logging.Filter):
    """Sets ``record.run_id`` and ``record.source_id`` (None where unknown) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "run_id", None) is None:
            record.run_id = RUN_ID.get()
        if getattr(record, "source_id", None) is None:
            source_id = SOURCE_ID.get()
            if source_id is None:
                source = getattr(getattr(record, "spider", None), "source", None)
                source_id = getattr(source, "id", None)
            record.source_id = source_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO-8601), level, logger, msg, run_id, source_id[, exc]."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "run_id": getattr(record, "run_id", None),
            "source_id": getattr(record, "source_id", None),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic one-line format, with ``[run N source S]`` appended where known."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = [f"{name} {value}" for name, value in (("run", getattr(record, "run_id", None)),
                                                      ("source", getattr(record, "source_id", None)))
                if value is not None]
        return f"{line} [{' '.join(tags)}]" if tags else line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def configure_logging(log_format: str, level: int = logging.WARNING) -> logging.Handler:
    """Install (or replace) the dwatch handler on the root logger; call again to switch format."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)
    # Scrapy sets its own loggers to DEBUG; the handler's level keeps the console to `level`.
    for other in root.handlers:
        other.setLevel(level)
    return handler


@contextmanager
def bind_run(run_id: int | None) -> Iterator[None]:
    token = RUN_ID.set(run_id)
    try:
        yield
    finally:
        RUN_ID.reset(token)


@contextmanager
def bind_source(source_id: str | None) -> Iterator[None]:
    token = SOURCE_ID.set(source_id)
    try:
        yield
    finally:
        SOURCE_ID.reset(token)
