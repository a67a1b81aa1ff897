"""The one clock: the current time in UTC, the default of every ingress and of the handoff, which tests replace."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
