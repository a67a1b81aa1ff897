"""Counts and timings in CloudWatch's embedded metric format (EMF): one JSON line on stdout, no AWS call.

CloudWatch Logs reads each line whose ``_aws`` member names its metrics and
turns it into metrics, in the namespace of the stage (``METRICS_NAMESPACE``,
set per stage in ``.chalice/config.json``). Each line carries every dimension
set it is counted under: an ingress's counts under ``Ingress`` (its name:
``sendgrid``, ``ses``, and whatever name a new ingress passes) and under
``Service`` alone, the total the alarms watch; a 5xx also under ``Ingress`` and
``Cause`` (the error's class). The handoff's under ``Mailbox`` (the route's
name) and ``Service``.

Written here rather than with Powertools' Metrics, whose line holds one
dimension set: a count under both its ingress and the service total would take
two lines. Dimension values are names we chose (an ingress, a route, an error
class), never an address or anything from the mail.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import TextIO

SERVICE = "inbound-mail"
NAMESPACE = "METRICS_NAMESPACE"
DEFAULT_NAMESPACE = "inbound-mail/local"

COUNT, BYTES, MILLISECONDS = "Count", "Bytes", "Milliseconds"

# The ingress's metrics.
STORED = "MailsStored"
DUPLICATES = "Duplicates"
QUARANTINED = "Quarantined"
UNAUTHORIZED = "Unauthorized"  # 401
TOO_LARGE = "TooLarge"  # 413
SERVER_ERRORS = "ServerErrors"  # 5xx, the provider retries
BYTES_RECEIVED = "BytesReceived"
DECODE_TIME = "DecodeTime"
# The handoff's.
DELIVERED = "Delivered"
BOUNCED = "Bounced"
FAILED = "Failed"
RETRIED = "Retried"  # an attempt that failed with attempts left
ATTEMPTS = "Attempts"  # every handler run, whatever its end
DEAD_LETTERED = "DeadLettered"  # a message gone on to the dead-letter queue


# Where the lines go: stdout, which Lambda hands to CloudWatch Logs; a benchmark sets its own.
stream: TextIO | None = None


def clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Ingested:
    """One delivery's end at an ingress, as its answer says."""

    ingress: str
    status: int
    duplicate: bool = False
    quarantined: bool = False
    cause: str | None = None  # the error's class, for a 5xx
    received_bytes: int | None = None
    decode_ms: float | None = None


def ingested(event: Ingested) -> None:
    values: dict[str, tuple[float, str]] = {}
    if event.status == 200:
        values[DUPLICATES if event.duplicate else STORED] = (1, COUNT)
    if event.quarantined:
        values[QUARANTINED] = (1, COUNT)
    counted = {401: UNAUTHORIZED, 413: TOO_LARGE}
    if event.status in counted:
        values[counted[event.status]] = (1, COUNT)
    if event.status >= 500:
        values[SERVER_ERRORS] = (1, COUNT)
    if event.received_bytes is not None:
        values[BYTES_RECEIVED] = (event.received_bytes, BYTES)
    if event.decode_ms is not None:
        values[DECODE_TIME] = (event.decode_ms, MILLISECONDS)
    dimensions = {"Service": SERVICE, "Ingress": event.ingress}
    sets = [["Service"], ["Ingress"]]
    if event.status >= 500:
        dimensions["Cause"] = event.cause or "unknown"
        sets.append(["Ingress", "Cause"])
    emit(values, dimensions, sets)


_HANDOFF = {"delivered": DELIVERED, "bounced": BOUNCED, "failed": FAILED, "retry": RETRIED}


def handed_off(outcome: str, mailbox: str | None) -> None:
    """One handoff message's end, as its log line says.

    A handler ran when there is a mailbox: one attempt, ``delivered``,
    ``bounced``, ``retry`` (attempts left) or ``failed`` (none left). Without
    one, ``failed`` is the receive past the last attempt, whose message goes on
    to the dead letters; any other end (a spent message, a held lease) ran
    nothing and counts nothing.
    """
    values: dict[str, tuple[float, str]] = {}
    if mailbox is not None:
        values[ATTEMPTS] = (1, COUNT)
        if outcome in _HANDOFF:
            values[_HANDOFF[outcome]] = (1, COUNT)
    elif outcome == "failed":
        values[DEAD_LETTERED] = (1, COUNT)
    dimensions = {"Service": SERVICE, "Mailbox": mailbox or "none"}
    emit(values, dimensions, [["Service"], ["Mailbox"]])


def emit(values: dict[str, tuple[float, str]], dimensions: dict[str, str], sets: list[list[str]]) -> None:
    """One EMF line: each value under each dimension set; nothing when there is nothing to count."""
    if not values:
        return
    blob = {
        "_aws": {
            "Timestamp": clock_ms(),
            "CloudWatchMetrics": [
                {
                    "Namespace": os.environ.get(NAMESPACE) or DEFAULT_NAMESPACE,
                    "Dimensions": sets,
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                }
            ],
        },
        **dimensions,
        **{name: value for name, (value, _) in values.items()},
    }
    out = stream or sys.stdout  # looked up per line: a test's capture, or Lambda's stdout
    out.write(json.dumps(blob, separators=(",", ":")) + "\n")
    out.flush()
