"""POST /ingress/mailgun and /ingress/mailgun/mime: a Mailgun Route's forward() action, parsed or as MIME.

Mailgun retries anything but a 200 or a 406 for 8 hours:
  200 {"id", "duplicate"}  stored (or the same mail again)
  400  signed, but no mail in it; kept aside in S3, the reply says where
  401  signature (or HTTP Basic) missing, wrong, stale or its token used already
  413  over MAX_BODY_BYTES       415  neither multipart/form-data nor x-www-form-urlencoded
  503  storage down or nothing configured
"""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.ingress.request import Request
from chalicelib.web import ingress_answer
from chalicelib.wiring import services

blueprint = Blueprint(__name__)
_TYPES = ["multipart/form-data", "application/x-www-form-urlencoded"]


def _receive(route: str) -> Response:
    request = blueprint.current_request
    body = request.raw_body
    body = body if isinstance(body, bytes) else body.encode("utf-8")
    delivery = Request(body, request.headers.get("content-type"), request.headers)
    return ingress_answer(route, len(body), lambda: services.mailgun().ingest(delivery), ingress="mailgun")


@blueprint.route("/ingress/mailgun", methods=["POST"], content_types=_TYPES)
def receive_mailgun() -> Response:
    return _receive("POST /ingress/mailgun")


@blueprint.route("/ingress/mailgun/mime", methods=["POST"], content_types=_TYPES)
def receive_mailgun_mime() -> Response:
    return _receive("POST /ingress/mailgun/mime")
