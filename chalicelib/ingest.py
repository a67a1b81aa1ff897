"""One SendGrid delivery, from request bytes to a stored mail: authenticate, decode, store.

The order is the contract: nothing is read before the caller is known, nothing
is answered with success before the commit, and a body that can never be read
is kept aside before it is refused, so that an operator can still recover it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from chalicelib import auth, multipart, sendgrid
from chalicelib.clock import utc_now
from chalicelib.config import Settings
from chalicelib.errors import AuthenticationError, MalformedMailError, NotConfiguredError, PayloadTooLargeError
from chalicelib.handoff import PENDING, Queue
from chalicelib.mail import InboundMail
from chalicelib.signature import SignatureVerifier
from chalicelib.store import MailStore


@dataclass(frozen=True)
class Delivery:
    body: bytes
    content_type: str | None
    query: Mapping[str, str]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Outcome:
    id: str
    duplicate: bool
    attachments: int


@dataclass
class Ingestor:
    settings: Settings
    store: MailStore
    # Any of them may have signed the post: two during a key rotation.
    verifiers: tuple[SignatureVerifier, ...] = ()
    queue: Queue | None = None
    clock: Callable[[], datetime] = utc_now

    def authenticate(self, delivery: Delivery, received: datetime) -> None:
        """Credentials, then the size bound, then the signature: all before any parsing."""
        if not self.settings.mail_credentials and not self.verifiers:
            raise NotConfiguredError("no ingest credentials or verification key are configured")
        if self.settings.mail_credentials:
            auth.check_ingest(
                self.settings.mail_credentials,
                delivery.query,
                _header(delivery.headers, "authorization"),
            )
        if len(delivery.body) > self.settings.max_body_bytes:
            raise PayloadTooLargeError(f"request body exceeds {self.settings.max_body_bytes} bytes")
        if self.verifiers:
            _verify_any(self.verifiers, delivery, received.timestamp())

    def ingest(self, delivery: Delivery) -> Outcome:
        # Content type first: a body that is not a form is refused whoever sends it.
        multipart.boundary_of(delivery.content_type)
        received = self.clock()
        self.authenticate(delivery, received)
        try:
            form = multipart.parse(delivery.body, delivery.content_type)
            mail = sendgrid.parse(form)
        except (MalformedMailError, PayloadTooLargeError) as exc:
            # Authenticated but unreadable: no retry can fix it, so it is kept
            # aside for an operator before it is refused.
            key = self.store.quarantine(
                delivery.body, delivery.content_type or "", exc.message, received
            )
            raise type(exc)(exc.message, quarantine=key) from exc
        return commit(self.store, self.queue, mail, delivery.body, delivery.content_type or "", received)


def commit(
    store: MailStore,
    queue: Queue | None,
    mail: InboundMail,
    raw: bytes,
    content_type: str,
    received: datetime,
    raw_key: str | None = None,
) -> Outcome:
    """Store a decoded mail, then put its id on the handoff queue while it is pending.

    A failure to queue is a 5xx (or an SQS retry): the redelivery finds the
    mail still pending and sends its id again, so no committed mail is left
    behind. A second message for one mail is harmless; the consumer claims it once.
    """
    saved = store.save(mail, raw, content_type, received, track=queue is not None, raw_key=raw_key)
    if queue is not None and saved.status == PENDING:
        queue.send(saved.id)
    return Outcome(saved.id, saved.duplicate, len(mail.attachments))


def _verify_any(verifiers: tuple[SignatureVerifier, ...], delivery: Delivery, now: float) -> None:
    refusal: AuthenticationError | None = None
    for verifier in verifiers:
        try:
            verifier.verify(delivery.headers, delivery.body, now)
        except AuthenticationError as exc:
            refusal = exc
        else:
            return
    assert refusal is not None
    raise refusal


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
