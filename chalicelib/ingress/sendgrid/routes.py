"""POST /mails: SendGrid's Inbound Parse webhook, also at POST /ingress/sendgrid, its name in the ingress family.

SendGrid retries a 5xx for 72 hours and drops a 4xx:
  200 {"id", "duplicate": false}  stored: S3 original, then the DynamoDB commit
  200 {"id", "duplicate": true}   the same mail again; nothing new stored
  400  authenticated, unreadable body; kept aside in S3, the reply says where
  401  credentials or signature missing or wrong; nothing stored
  413  body over the configured bound
  415  not multipart/form-data; nothing stored
  503  storage unavailable or nothing configured; nothing visible, SendGrid retries
"""

from __future__ import annotations

import time

from chalice.app import Blueprint, Response

from chalicelib import logs
from chalicelib.web import answer, counted
from chalicelib.wiring import services

INGRESS = "sendgrid"  # its name in the metrics
blueprint = Blueprint(__name__)


@blueprint.route("/mails", methods=["POST"], content_types=["multipart/form-data"])
def receive_mail() -> Response:
    return _receive("POST /mails")


@blueprint.route("/ingress/sendgrid", methods=["POST"], content_types=["multipart/form-data"])
def receive_sendgrid() -> Response:
    return _receive("POST /ingress/sendgrid")


def _receive(route: str) -> Response:
    request = blueprint.current_request
    body = request.raw_body
    start = time.perf_counter()

    def ingest() -> Response:
        # The decoder is imported with the ingestor, on the first post (chalicelib/wiring.py says why).
        from chalicelib.ingress.sendgrid.webhook import Delivery  # noqa: PLC0415

        outcome = services.sendgrid().ingest(
            Delivery(
                body=body if isinstance(body, bytes) else body.encode("utf-8"),
                content_type=request.headers.get("content-type"),
                query=request.query_params or {},
                headers=request.headers,
            )
        )
        logs.correlate(outcome.id)
        logs.line(
            route=route, status=200, id=outcome.id, outcome="duplicate" if outcome.duplicate else "stored",
            bytes=len(body), attachments=outcome.attachments, ms=logs.elapsed_ms(start),
        )
        return Response(body={"id": outcome.id, "duplicate": outcome.duplicate}, status_code=200)

    return counted(INGRESS, len(body), answer(route, ingest))
