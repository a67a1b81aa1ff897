"""POST /ingress/postmark: Postmark's inbound webhook (JSON), authenticated by HTTP Basic.

Postmark retries anything but a 200 (ten times, over about ten hours) and
stops on a 403, which this route never answers:
  200 {"id", "duplicate"}  stored (or the same mail again)
  400  not Postmark's JSON; kept aside in S3, the reply says where
  401  credentials missing or wrong, or a source outside POSTMARK_IPS
  413  over MAX_BODY_BYTES        415  not application/json
  503  storage down or nothing configured
"""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.ingress.request import Request
from chalicelib.web import ingress_answer
from chalicelib.wiring import services

blueprint = Blueprint(__name__)


@blueprint.route("/ingress/postmark", methods=["POST"], content_types=["application/json"])
def receive_postmark() -> Response:
    request = blueprint.current_request
    body = request.raw_body
    body = body if isinstance(body, bytes) else body.encode("utf-8")
    identity = (request.context or {}).get("identity") or {}
    delivery = Request(body, request.headers.get("content-type"), request.headers, identity.get("sourceIp"))
    return ingress_answer(
        "POST /ingress/postmark", len(body), lambda: services.postmark().ingest(delivery), ingress="postmark"
    )
