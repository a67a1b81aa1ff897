"""Posting one message the way each provider posts it, through Chalice's test client, and faults in storage."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from chalice.test import Client

from chalicelib.ingress.mailgun import poster as mailgun_poster
from chalicelib.ingress.postmark import poster as postmark_poster
from chalicelib.ingress.sendgrid import poster as sendgrid_poster
from chalicelib.wiring import services
from tests.conftest import KEY, SECRET

MAILGUN_KEY = "mailgun-signing-key-current"
MAILGUN_OLD_KEY = "mailgun-signing-key-previous"
BOX = "box@example.com"

Hook = Callable[..., Any]


def basic(key: str = KEY, secret: str = SECRET) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode("ascii")


def _post(client: Client, path: str, body: bytes, content_type: str, headers: dict[str, str]) -> Any:
    return client.http.post(path, body=body, headers={"Content-Type": content_type, **headers})


def as_relay(client: Client, eml: bytes, auth: str | None = None, **headers: str) -> Any:
    envelope = {"X-Envelope-From": "sender@example.org", "X-Envelope-To": BOX}
    return _post(client, "/ingress/relay", eml, "message/rfc822",
                 {"Authorization": auth or basic(), **envelope, **headers})


def as_postmark(client: Client, eml: bytes, auth: str | None = None, raw: bool = False, **headers: str) -> Any:
    body, content_type = postmark_poster.build_body(eml, raw=raw, envelope_to=[BOX])
    return _post(client, "/ingress/postmark", body, content_type, {"Authorization": auth or basic(), **headers})


def as_mailgun(
    client: Client, eml: bytes, auth: str | None = None, mime: bool = False, key: str = MAILGUN_KEY, **signed: Any
) -> Any:
    body, content_type = mailgun_poster.build_body(eml, key, mime=mime, envelope_to=[BOX], **signed)
    path = "/ingress/mailgun/mime" if mime else "/ingress/mailgun"
    return _post(client, path, body, content_type, {"Authorization": auth or basic()})


def as_sendgrid(client: Client, eml: bytes, auth: str | None = None, raw: bool = False) -> Any:
    body, content_type = sendgrid_poster.build_body(eml, raw=raw, envelope_to=[BOX])
    return _post(client, "/ingress/sendgrid", body, content_type, {"Authorization": auth or basic()})


POSTERS: dict[str, Callable[..., Any]] = {
    "relay": as_relay,
    "postmark": as_postmark,
    "postmark-raw": lambda client, eml, **kw: as_postmark(client, eml, raw=True, **kw),
    "mailgun": as_mailgun,
    "mailgun-mime": lambda client, eml, **kw: as_mailgun(client, eml, mime=True, **kw),
    "sendgrid": as_sendgrid,
    "sendgrid-raw": lambda client, eml, **kw: as_sendgrid(client, eml, raw=True, **kw),
}
# The mode each stores under: the ingress's name (SendGrid's modes name its two forms, as before).
MODES = {"relay": "relay", "postmark": "postmark", "postmark-raw": "postmark", "mailgun": "mailgun",
         "mailgun-mime": "mailgun", "sendgrid": "parsed", "sendgrid-raw": "raw"}


def down(**kwargs: Any) -> None:
    raise EndpointConnectionError(endpoint_url="https://aws.example")


@pytest.fixture
def inject(client: Client) -> Iterator[Callable[[str, str, Hook], None]]:
    """inject(service, operation, hook): the hook runs before each such call of the service's own clients."""
    registered: list[tuple[Any, str, Hook]] = []

    def add(service: str, operation: str, hook: Hook) -> None:
        client_ = {"s3": services.s3, "dynamodb": services.dynamodb}[service]()
        event = f"before-parameter-build.{service}.{operation}"
        client_.meta.events.register(event, hook)
        registered.append((client_, event, hook))

    yield add
    for client_, event, hook in registered:
        client_.meta.events.unregister(event, hook)
