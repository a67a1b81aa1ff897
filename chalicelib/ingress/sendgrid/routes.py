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

from chalice.app import Blueprint, Response

from chalicelib.ingress import Outcome
from chalicelib.web import ingress_answer
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
    body = body if isinstance(body, bytes) else body.encode("utf-8")

    def ingest() -> Outcome:
        # The decoder is imported with the ingestor, on the first post (chalicelib/wiring.py says why).
        from chalicelib.ingress.sendgrid.webhook import Delivery  # noqa: PLC0415

        delivery = Delivery(
            body=body, content_type=request.headers.get("content-type"), query=request.query_params or {},
            headers=request.headers,
        )
        return services.sendgrid().ingest(delivery)

    return ingress_answer(route, len(body), ingest, ingress=INGRESS)
