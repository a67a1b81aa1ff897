"""`make dev`'s queue consumers, hand_off and receive_ses, playing Lambda's SQS event source in a process of their own.

scripts/dev.py starts this process again whenever the app's code changes, so a
new interpreter imports the changed routing table whole. SIGTERM lets the
message being handled finish; those received but not yet begun go back to
their queue at once. Beside each handoff's JSON log line it prints one for
people: ``ID → MAILBOX: OUTCOME``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3

from chalicelib import logs
from chalicelib.delivery.consumer import hand_off
from chalicelib.ingress.ses.consumer import receive_ses
from chalicelib.wiring import services
from scripts.sqs_poller import Poller


def handoff_line(fields: dict[str, Any], max_attempts: int) -> str | None:
    """The line for people for one of hand_off's log lines: no address, no subject, no error text."""
    if fields.get("route") != "handoff":
        return None
    outcome, mailbox, error = fields.get("outcome"), fields.get("mailbox"), fields.get("error")
    if "id" not in fields:
        return f"handoff: {outcome}"
    if mailbox is None and error is None:
        return f"{fields['id']}: {outcome} (no handler ran)"
    text = f"{fields['id']} → {mailbox}: {outcome}" if mailbox else f"{fields['id']}: {outcome}"
    if error is None:
        return text
    count = fields.get("receive_count")
    attempt = f", attempt {count} of {max_attempts}" if isinstance(count, int) and count <= max_attempts else ""
    return f"{text} ({error}){attempt}"


class HandoffLines(logging.Handler):
    def __init__(self, max_attempts: int) -> None:
        super().__init__()
        self._max_attempts = max_attempts

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = json.loads(record.getMessage())
        except ValueError:
            return  # a traceback, or another logger's text
        text = handoff_line(fields, self._max_attempts) if isinstance(fields, dict) else None
        if text is not None:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()


def main() -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logs.configure()
    logs.log.addHandler(HandoffLines(services.settings().max_attempts))
    sqs = boto3.client("sqs")
    pollers = [Poller(sqs, os.environ["MAILS_QUEUE"], hand_off), Poller(sqs, os.environ["SES_QUEUE"], receive_ses)]
    while not stop.is_set():
        for poller in pollers:
            poller.poll(wait_seconds=1, stop=stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
