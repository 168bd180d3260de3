"""Logging set-up for the command line: the text lines of old, or one JSON object per line for
a log collector (``SAMHANDLING_LOG_FORMAT=json``), each line logged while serving a request
carrying that request's id.

What a line says is up to the code that logs it (ids, kinds and counts, never what a person
typed; see ``coordination.problems``). The JSON form adds no exception message either: only the
exception's type and where it was raised, since an error's text may hold the row it refused.
"""

from __future__ import annotations

import enum
import itertools
import json
import logging
import os
import re
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

#: The text format, as it always was.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

#: The id of the request being served, for the log lines written while serving it.
REQUEST_ID: ContextVar[str | None] = ContextVar("samhandling_request_id", default=None)

#: An ``X-Request-ID`` taken from a client or a proxy as it is: a short token, nothing a log
#: line or a response header could be bent by.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class _RequestIds:
    """New request ids: this process's random prefix and a counter. Unique without the cost of
    a random number per request (a feed poll is served in well under a millisecond); a forked
    worker takes a prefix of its own."""

    def __init__(self) -> None:
        self.renew()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        self.prefix = os.urandom(6).hex()
        self.count = itertools.count(1)

    def new(self) -> str:
        return f"{self.prefix}-{next(self.count):x}"


_IDS = _RequestIds()


def request_id_from(header: bytes | None) -> str:
    """The caller's request id when it is a sane token, else a new one."""
    if header is not None:
        text = header.decode("latin-1")
        if _SANE_REQUEST_ID.fullmatch(text):
            return text
    return _IDS.new()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the request
    id while a request is served; for an exception its type and our frames, never its text."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info and record.exc_info[0] is not None:
            kind, _, trace = record.exc_info
            line["exception"] = kind.__qualname__
            line["at"] = [f"{frame.filename}:{frame.lineno} in {frame.name}"
                          for frame in traceback.extract_tb(trace)]
        return json.dumps(line, ensure_ascii=False)


def formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format is LogFormat.JSON else logging.Formatter(TEXT_FORMAT)


def configure(level: str, log_format: LogFormat) -> None:
    """The root logger for a command: to standard error, at ``level``, in ``log_format``."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler])
    # The scheduler's own chatter (a line per tick) drowns what matters; its errors still show.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def uvicorn_log_config(log_format: LogFormat) -> dict[str, Any] | None:
    """uvicorn's own logging: its default text set-up, or none at all in JSON (its lines then go
    to the root logger, as JSON like every other line)."""
    if log_format is LogFormat.JSON:
        return None
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG
