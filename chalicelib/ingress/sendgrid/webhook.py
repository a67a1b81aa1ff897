"""One SendGrid post, from request bytes to a stored mail: authenticate, bound, verify, decode, commit."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib import tracing
from chalicelib.clock import utc_now
from chalicelib.config import Settings
from chalicelib.delivery.queue import Queue
from chalicelib.errors import AuthenticationError, NotConfiguredError, PayloadTooLargeError
from chalicelib.ingress import Outcome, commit, form, or_quarantine
from chalicelib.ingress.credentials import check_ingest
from chalicelib.ingress.sendgrid import payload
from chalicelib.storage.store import MailStore

if TYPE_CHECKING:  # cryptography is loaded only when a key is set (chalicelib/wiring.py)
    from chalicelib.ingress.sendgrid.signature import SignatureVerifier


@dataclass(frozen=True)
class Delivery:
    body: bytes
    content_type: str | None
    query: Mapping[str, str]
    headers: Mapping[str, str]

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == name), None)


@dataclass
class SendGridIngestor:
    settings: Settings
    store: MailStore
    # Any of them may have signed the post: two during a key rotation.
    verifiers: tuple[SignatureVerifier, ...] = ()
    queue: Queue | None = None
    clock: Callable[[], datetime] = utc_now

    def ingest(self, delivery: Delivery) -> Outcome:
        # Content type first: a body that is not a form is refused whoever sends it.
        form.boundary_of(delivery.content_type)
        received = self.clock()
        self.authenticate(delivery, received)
        return self._accept(delivery, received)

    def conduct(self, delivery: Delivery) -> Outcome:
        """A post the console made (``conductor.py``): its caller proved itself with a read token, not
        SendGrid's credentials; from the size bound on, the same steps as every post."""
        form.boundary_of(delivery.content_type)
        received = self.clock()
        if len(delivery.body) > self.settings.max_body_bytes:
            raise PayloadTooLargeError(f"request body exceeds {self.settings.max_body_bytes} bytes")
        return self._accept(delivery, received)

    def _accept(self, delivery: Delivery, received: datetime) -> Outcome:
        content_type = delivery.content_type or ""
        with tracing.span(tracing.DECODE):
            mail = or_quarantine(
                lambda: payload.parse(form.parse(delivery.body, delivery.content_type)),
                lambda reason: self.store.quarantine(delivery.body, content_type, reason, received),
            )
        return commit(self.store, self.queue, mail, delivery.body, content_type, received)

    def authenticate(self, delivery: Delivery, received: datetime) -> None:
        """Credentials, then the size bound, then the signature: all before any parsing."""
        if not self.settings.mail_credentials and not self.verifiers:
            raise NotConfiguredError("no ingest credentials or verification key are configured")
        if self.settings.mail_credentials:
            check_ingest(self.settings.mail_credentials, delivery.query, delivery.header("authorization"))
        if len(delivery.body) > self.settings.max_body_bytes:
            raise PayloadTooLargeError(f"request body exceeds {self.settings.max_body_bytes} bytes")
        if self.verifiers:
            self._verify(delivery, received.timestamp())

    def _verify(self, delivery: Delivery, now: float) -> None:
        refusal: AuthenticationError | None = None
        for verifier in self.verifiers:
            try:
                verifier.verify(delivery.headers, delivery.body, now)
            except AuthenticationError as exc:
                refusal = exc
            else:
                return
        assert refusal is not None
        raise refusal
