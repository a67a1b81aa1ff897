"""POST /ingress/relay: a whole message (``message/rfc822``) from the operator's MTA, through ``mails relay``.

  200 {"id", "duplicate"}  stored (or the same mail again)
  400  unreadable message; kept aside in S3, the reply says where
  401  HTTP Basic missing or wrong       413  over MAX_BODY_BYTES
  415  not message/rfc822               503  storage down or nothing configured: the MTA retries
"""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.ingress.request import Request
from chalicelib.web import ingress_answer
from chalicelib.wiring import services

blueprint = Blueprint(__name__)


@blueprint.route("/ingress/relay", methods=["POST"], content_types=["message/rfc822"])
def receive_relayed() -> Response:
    request = blueprint.current_request
    body = request.raw_body
    body = body if isinstance(body, bytes) else body.encode("utf-8")
    delivery = Request(body, request.headers.get("content-type"), request.headers)
    return ingress_answer("POST /ingress/relay", len(body), lambda: services.relay().ingest(delivery), ingress="relay")
