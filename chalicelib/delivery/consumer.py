"""hand_off: the Lambda function behind the handoff queue; each message names one stored mail."""

from __future__ import annotations

import json
import os
import time

from chalice.app import Blueprint, SQSEvent

from chalicelib import logs, metrics
from chalicelib.wiring import services

# Chalice wires the event source when it packages the app, before any stage
# environment exists, so the name is read at import: deploy with MAILS_QUEUE
# set to the stage's queue (the Makefile does), the same value the stage's
# environment gives the running function.
HANDOFF_QUEUE = os.environ.get("MAILS_QUEUE", "inbound-mail-handoff")

logs.configure()
blueprint = Blueprint(__name__)


class HandlerFailed(Exception):
    """What Lambda's log shows for a failed attempt: the error's class and the mail, never its message."""


@blueprint.on_sqs_message(queue=HANDOFF_QUEUE, batch_size=1)
def hand_off(event: SQSEvent) -> None:
    logs.start(event.context)
    for record in event:
        start = time.perf_counter()
        attributes = record.to_dict().get("attributes", {})
        receive_count = int(attributes.get("ApproximateReceiveCount", "1"))
        message = _message(record.body)
        if message is None:
            logs.line(route="handoff", outcome="unreadable message", ms=logs.elapsed_ms(start))
            continue  # no retry can make it readable
        mail_id, round_id = message
        logs.correlate(mail_id)
        try:
            attempt = services.handoff().process(mail_id, receive_count, record.receipt_handle, round_id)
        except Exception as exc:
            error, outcome, mailbox = _failure(exc)
            logs.failure(error, route="handoff", id=mail_id, outcome=outcome, mailbox=mailbox,
                         error=type(error).__name__, receive_count=receive_count, ms=logs.elapsed_ms(start))
            metrics.handed_off(outcome, mailbox)
            # Raising hands the message back to SQS (after the last attempt, on to
            # the dead letters); the message is ours to write, the handler's
            # exception text is not (it may quote the mail).
            raise HandlerFailed(f"{type(error).__name__} handling mail {mail_id}") from None
        logs.line(route="handoff", id=mail_id, outcome=attempt.status, mailbox=attempt.route,
                  receive_count=receive_count, ms=logs.elapsed_ms(start))
        metrics.handed_off(attempt.status, attempt.route)


def _message(body: str) -> tuple[str, str | None] | None:
    """The mail's id and the round the message is for (delivery/queue.py); None when it is not one of ours."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    mail_id, round_id = message.get("id"), message.get("round")
    if not isinstance(mail_id, str) or not (round_id is None or isinstance(round_id, str)):
        return None
    return mail_id, round_id


def _failure(exc: Exception) -> tuple[BaseException, str, str | None]:
    """The error to report, the outcome (``failed`` when no attempt is left, as the ledger says) and the mailbox."""
    # The handoff's code loads with its service, in this function alone (chalicelib/wiring.py says why).
    from chalicelib.delivery.handoff import AttemptsExhausted, HandlerError  # noqa: PLC0415

    if isinstance(exc, HandlerError):
        return exc.__cause__ or exc, "failed" if exc.final else "retry", exc.route
    return exc, "failed" if isinstance(exc, AttemptsExhausted) else "retry", None
