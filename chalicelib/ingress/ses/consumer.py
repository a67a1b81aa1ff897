"""receive_ses: the Lambda function behind the SES queue; each message notifies one mail SES wrote to the bucket."""

from __future__ import annotations

import os
import time
from typing import Any

from chalice.app import Blueprint, SQSEvent

from chalicelib import logs, metrics, tracing
from chalicelib.errors import (
    BadRequestError,
    MailServiceError,
    NotFoundError,
    PayloadTooLargeError,
    StorageUnavailableError,
)
from chalicelib.wiring import services

# Chalice wires the event source when it packages the app, before any stage
# environment exists, so the name is read at import: deploy with SES_QUEUE set
# to the stage's queue (the Makefile does).
SES_QUEUE = os.environ.get("SES_QUEUE", "inbound-mail-ses")

INGRESS = "ses"  # its name in the metrics
logs.configure()
blueprint = Blueprint(__name__)


@blueprint.on_sqs_message(queue=SES_QUEUE, batch_size=1)
def receive_ses(event: SQSEvent) -> None:
    logs.start(event.context)
    # The SES ingress loads in its own function alone (chalicelib/wiring.py says why).
    from chalicelib.ingress.ses.notice import parse_notice  # noqa: PLC0415

    for record in event:
        start = time.perf_counter()
        try:
            outcome = services.ses().ingest(parse_notice(record.body))
        except (BadRequestError, NotFoundError, PayloadTooLargeError) as exc:
            # No retry can fix these: the object is kept aside (when there is
            # one) and the message is done, rather than retried into the dead letters.
            logs.line(route="ses", status=exc.status, outcome=type(exc).__name__,
                      quarantine=exc.details.get("quarantine"), ms=logs.elapsed_ms(start))
            _count(exc.status, quarantined="quarantine" in exc.details)
            continue
        except MailServiceError as exc:
            logs.line(route="ses", status=exc.status, outcome=type(exc).__name__, ms=logs.elapsed_ms(start))
            _count(exc.status, cause=type(exc).__name__)
            raise StorageUnavailableError(exc.message) from None
        except Exception as exc:
            _count(500, cause=type(exc).__name__)
            raise
        logs.correlate(outcome.id)
        logs.line(route="ses", status=200, id=outcome.id, outcome="duplicate" if outcome.duplicate else "stored",
                  attachments=outcome.attachments, ms=logs.elapsed_ms(start))
        _count(200, duplicate=outcome.duplicate)


def _count(status: int, **fields: Any) -> None:
    """SES's delivery in the metrics, as a webhook's answer of that status would be."""
    metrics.ingested(metrics.Ingested(INGRESS, status, decode_ms=tracing.elapsed(tracing.DECODE), **fields))
