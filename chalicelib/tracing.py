"""Where an invocation spends its time: named spans, timed for the metrics, and X-Ray subsegments when traced.

Tracing is on where Lambda runs the function with X-Ray active tracing (the
deployed stages' ``xray`` setting in ``.chalice/config.json``): Lambda then sets
``AWS_XRAY_DAEMON_ADDRESS``. Only then is aws_xray_sdk imported (on the first
span or client), botocore patched so that each S3, DynamoDB and SQS call is a
subsegment named after its service, and each ``span()`` a subsegment of its
own name (``decode``). Elsewhere (tests, ``make dev``, a stage without X-Ray)
nothing is imported and a span only reads the clock.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DAEMON = "AWS_XRAY_DAEMON_ADDRESS"
DECODE = "decode"

_elapsed: dict[str, float] = {}


def enabled() -> bool:
    return bool(os.environ.get(DAEMON))


def instrument() -> None:
    """Before the first AWS client: when traced, botocore's calls become subsegments (S3, DynamoDB, SQS)."""
    recorder()


def recorder() -> Any:
    """aws_xray_sdk's recorder, botocore patched, when traced; else None, with nothing imported."""
    return _xray() if enabled() else None


@functools.cache
def _xray() -> Any:
    from aws_xray_sdk.core import patch, xray_recorder  # noqa: PLC0415  # only where traced: no cost elsewhere

    patch(["botocore"])
    return xray_recorder


def reset() -> None:
    """An invocation begins: no span timed yet."""
    _elapsed.clear()


@contextmanager
def span(name: str) -> Iterator[None]:
    """Time a step (its milliseconds are ``elapsed(name)``), as a subsegment of that name when traced."""
    traced = recorder()
    if traced is not None:
        traced.begin_subsegment(name)
    start = time.perf_counter()
    try:
        yield
    finally:
        _elapsed[name] = round((time.perf_counter() - start) * 1000, 1)
        if traced is not None:
            traced.end_subsegment()


def elapsed(name: str) -> float | None:
    """The last span of that name in this invocation, in milliseconds; None when none ran."""
    return _elapsed.get(name)
