"""One JSON log line per request or queue message, with no secret, token, address or mail content in it.

The lines are Powertools' Logger's (AWS Lambda Powertools, the library Lambda
users know): JSON with the level, the place in our code, the time, the
service, and each invocation's Lambda context (``function_name``,
``function_request_id``, ``function_memory_size``, ``function_arn``,
``cold_start``) and ``correlation_id``, the mail's id once it is known
(``start()``, ``correlate()``). Our own fields are the line's ``message``, an
object (``line()``), so the record's message stays their JSON text.

Every entry point calls ``configure()`` and, per invocation, ``start()``:
Lambda imports a Blueprint's event handler module directly, without
``app.py``, so Chalice's own log set-up may never run.

A failure's line carries where the error was raised (file, line and function of
each frame) but never the exception's text, which may quote the mail. Only
``make dev`` sets ``LOG_TRACEBACKS=1``, which logs the whole traceback, text
included, before that line.

Only ``aws_lambda_powertools.logging`` is imported; the package's own
``__init__`` still loads its Logger, Metrics and Tracer modules (not
aws_xray_sdk): about 7 ms, docs/operations/observability.md.
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

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from chalicelib import tracing

LOGGER_NAME = "inbound-mail"
TRACEBACKS = "LOG_TRACEBACKS"
MAX_FRAMES = 20  # the innermost ones, where the error was raised


class _Console(LambdaPowertoolsFormatter):
    """``make dev``'s lines, for a person at a console with no Lambda context: ``inbound-mail - LEVEL - {fields}``,
    and a traceback as Python prints it."""

    _plain = logging.Formatter("%(name)s - %(levelname)s - %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return self._plain.format(record)


logger = Logger(
    service=LOGGER_NAME, level="INFO", stream=sys.stdout, utc=True,
    logger_formatter=_Console() if os.environ.get(TRACEBACKS) == "1" else None,
)
log = logging.getLogger(LOGGER_NAME)  # the standard logger Powertools' Logger writes through
# In Lambda the root logger has the runtime's own handler: one line, not two.
log.propagate = False
_LINE = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps would build one per line
_PROJECT = Path(__file__).resolve().parent.parent
# Powertools' names for the Lambda context's fields, as its own inject_lambda_context writes them.
_CONTEXT_FIELDS = {
    "function_name": "function_name", "function_memory_size": "memory_limit_in_mb",
    "function_arn": "invoked_function_arn", "function_request_id": "aws_request_id",
}
_process = {"warm": False}  # whether this process has served an invocation already


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
    logger.append_keys(**keys)
    logger.set_correlation_id(None)
    tracing.reset()


def correlate(mail_id: str) -> None:
    """The mail this invocation is about: its id on every line from here."""
    logger.set_correlation_id(mail_id)


def formatted(record: logging.LogRecord) -> dict[str, Any]:
    """A record as its line reads in the log, parsed: what a test checks and an operator queries.

    The invocation's keys are those of now: call it as the record is written (from a handler).
    """
    parsed: dict[str, Any] = json.loads(logger.registered_formatter.format(record))
    return parsed


def line(**fields: Any) -> None:
    # stacklevel: the line's location is its caller's (2 is Powertools' own default, past its wrapper).
    logger.info(_LINE.encode(fields), stacklevel=3)


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
        logger.error("%s's traceback:", type(exc).__name__, exc_info=exc)
    logger.info(_LINE.encode({**fields, "frames": frames(exc)}), stacklevel=3)
