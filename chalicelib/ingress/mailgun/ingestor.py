"""One Mailgun post: who sent it (HTTP Basic and/or the signature), its size, then the mail.

The signature is inside the form, so the form is split first, by our bounded
parser; the mail is decoded only once the signature holds and its token is
remembered. A form that cannot be split is kept aside only when HTTP Basic
already said who sent it: an anonymous body is refused and never stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import tracing
from chalicelib.clock import utc_now
from chalicelib.config import Settings
from chalicelib.delivery.queue import Queue
from chalicelib.errors import AuthenticationError, NotConfiguredError, NotFoundError
from chalicelib.ingress import Outcome, commit, or_quarantine
from chalicelib.ingress.credentials import check_ingest
from chalicelib.ingress.mailgun import payload, signature
from chalicelib.ingress.request import Request, check_size, require_media_type
from chalicelib.model import InboundMail
from chalicelib.storage.store import MailStore

# Seconds a remembered token outlives the tolerance, for clocks that disagree a little.
TOKEN_MARGIN = 60


def message_of(request: bytes, content_type: str, document: dict[str, Any]) -> bytes:
    """``GET /mails/{id}/eml``: the ``body-mime`` Mailgun posted to a ``mime`` URL; parsed posts have none."""
    found = payload.message_of(payload.read(request, content_type))
    if found is None:
        raise NotFoundError("Mailgun posted its parse, not the message (use the URL ending in /mime)")
    return found


@dataclass
class MailgunIngestor:
    settings: Settings
    store: MailStore
    queue: Queue | None = None
    clock: Callable[[], datetime] = utc_now

    def ingest(self, request: Request) -> Outcome:
        require_media_type(request, payload.FORM, payload.URLENCODED)
        keys = self.settings.mailgun_signing_keys
        if not keys and not self.settings.mail_credentials:
            raise NotConfiguredError("no Mailgun signing key or ingest credentials are configured")
        if self.settings.mail_credentials:
            check_ingest(self.settings.mail_credentials, None, request.header("authorization"))
        check_size(self.settings, request)
        received = self.clock()
        content_type = request.content_type or ""

        def keep_aside(reason: str) -> str:
            return self.store.quarantine(request.body, content_type, reason, received)

        if keys:
            post = payload.read(request.body, content_type)  # anonymous yet: refused, never kept
            self._verify(post, request.body, received.timestamp())
        else:
            post = or_quarantine(lambda: payload.read(request.body, content_type), keep_aside)
        with tracing.span(tracing.DECODE):
            mail: InboundMail = or_quarantine(lambda: payload.parse(post), keep_aside)
        return commit(self.store, self.queue, mail, request.body, content_type, received)

    def _verify(self, post: payload.Post, body: bytes, now: float) -> None:
        signed = signature.verify(
            self.settings.mailgun_signing_keys, post.text("timestamp"), post.text("token"), post.text("signature"),
            now, self.settings.mailgun_tolerance,
        )
        # The same token on the same body is Mailgun retrying the one post; on another body, a replay.
        fingerprint = hashlib.sha256(body).hexdigest()
        if not self.store.use_once("mailgun", signed.token, fingerprint, signed.replayable_until + TOKEN_MARGIN):
            raise AuthenticationError("signature token already used")
