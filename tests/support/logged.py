"""The `logged` fixture (a plugin of conftest.py): our log lines as the log holds them, each formatted when written."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import logs


class Lines(logging.Handler):
    """Each of our lines as the log holds it: formatted when written, with the invocation's keys of that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logs.formatted(record))


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    handler = Lines()
    logs.log.addHandler(handler)
    yield handler.lines
    logs.log.removeHandler(handler)
