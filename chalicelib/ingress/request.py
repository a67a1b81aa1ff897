"""What every webhook ingress reads of its request, and the checks they share: who posts, and how much.

The route hands over the request as bytes and strings (no Chalice object), so
that an ingress is tested and reused without a web framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.config import Settings
from chalicelib.errors import NotConfiguredError, PayloadTooLargeError, UnsupportedMediaTypeError
from chalicelib.ingress.credentials import check_ingest


@dataclass(frozen=True)
class Request:
    body: bytes
    content_type: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    # The TCP peer as API Gateway saw it (``requestContext.identity.sourceIp``),
    # never a header: X-Forwarded-For is whatever the client wrote in front of it.
    source_ip: str | None = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == name), None)

    def media_type(self) -> str:
        return (self.content_type or "").split(";", 1)[0].strip().lower()


def require_media_type(request: Request, *accepted: str) -> None:
    """415 unless the body is of one of the ingress's media types: refused whoever sends it."""
    if request.media_type() not in accepted:
        raise UnsupportedMediaTypeError(f"Content-Type must be {' or '.join(accepted)}")


def check_basic(settings: Settings, request: Request) -> None:
    """HTTP Basic against ``MAIL_CREDENTIALS``; none configured is a 503 (fail closed, the sender retries)."""
    if not settings.mail_credentials:
        raise NotConfiguredError("no ingest credentials are configured")
    check_ingest(settings.mail_credentials, None, request.header("authorization"))


def check_size(settings: Settings, request: Request) -> None:
    if len(request.body) > settings.max_body_bytes:
        raise PayloadTooLargeError(f"request body exceeds {settings.max_body_bytes} bytes")
