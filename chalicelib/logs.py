"""One JSON log line per request or queue message, with no secret, token, address or mail content in it.

The lines have the shape of Powertools' Logger's (AWS Lambda Powertools, the
shape Lambda users know and query): JSON with the level, the place in our code,
the time, the service, and each invocation's Lambda context
(``function_name``, ``function_request_id``, ``function_memory_size``,
``function_arn``, ``cold_start``), ``correlation_id``, the mail's id once it
is known (``start()``, ``correlate()``), and ``xray_trace_id`` under X-Ray. Our
own fields are the line's ``message``, an object (``line()``), so the record's
message stays their JSON text.

Written here with the standard library's logging rather than by Powertools'
Logger: importing it loads the package's Logger, Metrics and Tracer modules
and typing_extensions, about 8 % of ``import boto3, chalice`` on every cold
start for 40 lines of formatting (docs/operations/observability.md).

Every entry point calls ``configure()`` and, per invocation, ``start()``:
Lambda imports a Blueprint's event handler module directly, without
``app.py``, so Chalice's own log set-up may never run.

A failure's line carries where the error was raised (file, line and function of
each frame) but never the exception's text, which may quote the mail. Only
``make dev`` sets ``LOG_TRACEBACKS=1``, which logs the whole traceback, text
included, before that line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from chalicelib import tracing

LOGGER_NAME = "inbound-mail"
TRACEBACKS = "LOG_TRACEBACKS"
MAX_FRAMES = 20  # the innermost ones, where the error was raised

_LINE = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps would build one per line
_RECORD = json.JSONEncoder(separators=(",", ":"), default=str)  # a stand-in context's odd field as text
_PROJECT = Path(__file__).resolve().parent.parent
# Powertools' names for the Lambda context's fields, as its own inject_lambda_context writes them.
_CONTEXT_FIELDS = {
    "function_name": "function_name", "function_memory_size": "memory_limit_in_mb",
    "function_arn": "invoked_function_arn", "function_request_id": "aws_request_id",
}
_process = {"warm": False}  # whether this process has served an invocation already
# The invocation's keys, on every line after the fixed ones; a key whose value is None is left out of the line.
_invocation: dict[str, Any] = {}


class _Json(logging.Formatter):
    """A record as one JSON line: level, location, message, timestamp (UTC), service, the invocation's keys."""

    def format(self, record: logging.LogRecord) -> str:
        return _RECORD.encode(self.fields(record))

    @staticmethod
    def fields(record: logging.LogRecord) -> dict[str, Any]:
        message: Any = record.getMessage() if record.args else record.msg
        if isinstance(message, str):
            with contextlib.suppress(ValueError):  # our lines' message is their fields' JSON text: an object
                message = json.loads(message)
        stamp = time.strftime(f"%Y-%m-%d %H:%M:%S,{int(record.msecs):03d}%z", time.gmtime(record.created))
        fields = {"level": record.levelname, "location": f"{record.funcName}:{record.lineno}", "message": message,
                  "timestamp": stamp, "service": LOGGER_NAME, **_invocation}
        trace = os.environ.get("_X_AMZN_TRACE_ID")  # Lambda's, under X-Ray: Root=1-...;Parent=...;Sampled=1
        if trace:
            fields["xray_trace_id"] = trace.split(";")[0].removeprefix("Root=")
        return {key: value for key, value in fields.items() if value is not None}


def _handler() -> logging.Handler:
    """stdout, which Lambda hands to CloudWatch Logs; for ``make dev``, ``inbound-mail - LEVEL - {fields}``
    for a person at a console, and a traceback as Python prints it."""
    handler = logging.StreamHandler(sys.stdout)
    dev = os.environ.get(TRACEBACKS) == "1"
    handler.setFormatter(logging.Formatter("%(name)s - %(levelname)s - %(message)s") if dev else _Json())
    return handler


log = logging.getLogger(LOGGER_NAME)
log.setLevel(logging.INFO)
log.addHandler(_handler())
# In Lambda the root logger has the runtime's own handler: one line, not two.
log.propagate = False


def configure() -> None:
    """Idempotent: botocore's loggers at WARNING, as their DEBUG lines carry request bodies.
    """
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def start(context: Any) -> None:
    """An invocation begins: its Lambda context on every line from here, and no correlation id yet.

    ``context`` is Lambda's (None when a test or a script calls a handler
    itself). The first invocation of a process is its cold start; a
    provisioned-concurrency container was started before any request, so none
    of its invocations is.
    """
    cold = not _process["warm"] and os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != "provisioned-concurrency"
    _process["warm"] = True
    keys: dict[str, Any] = {"cold_start": cold}
    if context is not None:
        # getattr: a stand-in context (chalice local's, the dev poller's) may lack some of Lambda's fields.
        keys.update({key: getattr(context, name, None) for key, name in _CONTEXT_FIELDS.items()})
    _invocation.update(keys, correlation_id=None)
    tracing.reset()


def correlate(mail_id: str) -> None:
    """The mail this invocation is about: its id on every line from here."""
    _invocation["correlation_id"] = mail_id


def formatted(record: logging.LogRecord) -> dict[str, Any]:
    """A record as its line reads in the log, parsed: what a test checks and an operator queries.

    The invocation's keys are those of now: call it as the record is written (from a handler).
    """
    parsed: dict[str, Any] = json.loads(_Json().format(record))
    return parsed


def line(**fields: Any) -> None:
    log.info(_LINE.encode(fields), stacklevel=2)  # the line's location is its caller's


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
    log.info(_LINE.encode({**fields, "frames": frames(exc)}), stacklevel=2)
