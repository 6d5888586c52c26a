"""Log lines carry no terminal colours, in the text and the JSON format, and other control
characters stay escaped."""

from __future__ import annotations

import io
import json
import logging

import pytest
from werkzeug import serving

from service.core.log_setup import make_handler


def _log_through(fmt: str, message: str, *args: object) -> str:
    stream = io.StringIO()
    logger = logging.getLogger(f"tests.core.log_setup.{fmt}")
    logger.propagate = False
    handler = make_handler(fmt, stream)
    logger.addHandler(handler)
    try:
        logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_werkzeugs_colours_never_reach_a_log_line(fmt, monkeypatch):
    # What `./dev start` logged: the development server's warning in bold red.
    monkeypatch.setattr(serving, "_log_add_style", True)
    styled = serving._ansi_style("WARNING: This is a development server.", "bold", "red")
    assert "\x1b[" in styled
    line = _log_through(fmt, "%s\n * Running on %s", styled, "http://127.0.0.1:8000")
    assert "\x1b" not in line and "\\x1b" not in line and "\\u001b" not in line
    message = line if fmt == "text" else json.loads(line)["message"]
    assert "WARNING: This is a development server." in message
    assert line.count("\n") == 1  # still one line: the newline is escaped


def test_other_escapes_are_still_written_as_escapes():
    line = _log_through("text", "path %s", "/x\x1b]0;title\x07")
    assert "\x1b" not in line and "\\x1b]0;title\\x07" in line
