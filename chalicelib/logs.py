"""One JSON log line per request or queue message, with no secret, token, address or mail content in it.

Every entry point calls ``configure()``: Lambda imports a Blueprint's event
handler module directly, without ``app.py``, so Chalice's own log set-up may
never run. The logger is Chalice's ``app.log`` (named after the app), set up
the way Chalice sets it up.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER_NAME = "inbound-mail"
log = logging.getLogger(LOGGER_NAME)
_LINE = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps would build one per line


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
