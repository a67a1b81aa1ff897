"""One JSON log line per request or queue message, with no secret, token, address or mail content in it.

Every entry point calls ``configure()``: Lambda imports a Blueprint's event
handler module directly, without ``app.py``, so Chalice's own log set-up may
never run. The logger is Chalice's ``app.log`` (named after the app), set up
the way Chalice sets it up.

A failure's line carries where the error was raised (file, line and function of
each frame) but never the exception's text, which may quote the mail. Only
``make dev`` sets ``LOG_TRACEBACKS=1``, which logs the whole traceback, text
included, before that line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

LOGGER_NAME = "inbound-mail"
TRACEBACKS = "LOG_TRACEBACKS"
MAX_FRAMES = 20  # the innermost ones, where the error was raised
log = logging.getLogger(LOGGER_NAME)
_LINE = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps would build one per line
_PROJECT = Path(__file__).resolve().parent.parent


def configure() -> None:
    """Idempotent: INFO lines to stdout; botocore's loggers at WARNING, as their DEBUG lines carry request bodies."""
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not any(getattr(handler, "stream", None) is sys.stdout for handler in log.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(name)s - %(levelname)s - %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.INFO)


def line(**fields: Any) -> None:
    log.info(_LINE.encode(fields))


def elapsed_ms(start: float) -> float:
    """Milliseconds since ``start``, a ``time.perf_counter()`` reading."""
    return round((time.perf_counter() - start) * 1000, 1)


def frames(exc: BaseException) -> list[str]:
    """Each frame of the exception's traceback as ``file:line in function``, outermost first.

    No source line is read and no exception text kept; the project's files are
    named relative to its root.
    """
    summary = traceback.StackSummary.extract(
        traceback.walk_tb(exc.__traceback__), limit=-MAX_FRAMES, lookup_lines=False
    )
    return [f"{_file(frame.filename)}:{frame.lineno} in {frame.name}" for frame in summary]


def _file(filename: str) -> str:
    path = Path(filename)
    return path.relative_to(_PROJECT).as_posix() if path.is_relative_to(_PROJECT) else filename


def failure(exc: BaseException, **fields: Any) -> None:
    """A failure's one line, with the exception's frames; under ``make dev`` its whole traceback first."""
    if os.environ.get(TRACEBACKS) == "1":
        log.error("%s's traceback:", type(exc).__name__, exc_info=exc)
    line(**fields, frames=frames(exc))
