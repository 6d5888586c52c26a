"""Logging of gunicorn workers, the queue worker and the CLI: one line per record, text or JSON.

Every line carries a UTC timestamp, the level, the logger and the request id (the web
request's, or `job:<id>` inside a queue task; `-` outside both). Control characters in a
message (CR, LF and the like, which a caller can put in a path, a resource type or CDS
feedback) are escaped, so a log line can never be forged. Terminal colours that libraries add
(werkzeug's development server) are dropped: a log line is text, not a terminal's.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any, TextIO

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
# A request id a caller may choose (X-Request-ID); anything else gets a fresh one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
# SGR sequences (colours, bold): ESC [ parameters m. Other escapes are escaped like any control.
_TERMINAL_STYLE = re.compile(r"\x1b\[[0-9;]*m")
_HANDLER_NAME = "eligibility"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def escape_controls(text: str) -> str:
    """The text with CR, LF, tabs and other control characters written as escapes."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is a plain token, else a new random id."""
    if header and _REQUEST_ID.fullmatch(header.strip()):
        return header.strip()
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record passing the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class NoTerminalStyles(logging.Filter):
    """Drops colour codes from a record's message, for the text and the JSON format alike."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "\x1b[" in message:
            record.msg, record.args = _TERMINAL_STYLE.sub("", message), None
        return True


def _utc_stamp(record: logging.LogRecord) -> str:
    """The record's time as ISO 8601 UTC with milliseconds (2026-11-30T00:05:30.123Z)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class OneLineFormatter(logging.Formatter):
    """The text format, with control characters escaped (tracebacks stay on one line too)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return _utc_stamp(record)

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class _Json(JsonFormatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
            return _utc_stamp(record)

    # JSON strings escape control characters themselves: one record, one line.
    return _Json(
        "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted (it may be replaced)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def make_handler(fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """A handler (stderr unless a stream is given) with the service's format and request ids."""
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(NoTerminalStyles())
    handler.setFormatter(_json_formatter() if fmt == "json" else OneLineFormatter(TEXT_FORMAT))
    return handler


def configure_logging(level: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Install the service's handler on the root logger (once; a second call replaces it)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    root.addHandler(make_handler(fmt, stream))
    root.setLevel(level)
    logging.getLogger("service").setLevel(level)


class bound_request_id:  # noqa: N801 - used like a function: `with bound_request_id(...)`
    """Set the request id for a block (a web request or a queue task)."""

    def __init__(self, value: str) -> None:
        self.value = value
        self._token: Any = None

    def __enter__(self) -> str:
        self._token = REQUEST_ID.set(self.value)
        return self.value

    def __exit__(self, *exc: object) -> None:
        REQUEST_ID.reset(self._token)
