"""A whole message from the operator's own MTA (Postfix, Exim, Qmail) through ``mails relay``.

The body is the message, byte for byte; the envelope is in ``X-Envelope-From``
and ``X-Envelope-To`` (comma-separated), which the MTA knows and the message
may not say (Bcc, aliases, lists).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chalicelib import tracing
from chalicelib.clock import utc_now
from chalicelib.config import Settings
from chalicelib.delivery.queue import Queue
from chalicelib.ingress import Outcome, commit, or_quarantine, rfc822
from chalicelib.ingress.request import Request, check_basic, check_size, require_media_type
from chalicelib.mime.addresses import parse_addresses
from chalicelib.model import Envelope, InboundMail
from chalicelib.storage.store import MailStore

MODE = "relay"
MEDIA_TYPE = "message/rfc822"


def envelope(request: Request) -> Envelope | None:
    """The MTA's envelope; None when it gave neither a sender nor a recipient."""
    sender = parse_addresses(request.header("x-envelope-from") or "")
    recipients = tuple(entry["address"] for entry in parse_addresses(request.header("x-envelope-to") or ""))
    found = sender[0]["address"] if sender else None
    return Envelope(found, recipients) if found or recipients else None


@dataclass
class RelayIngestor:
    settings: Settings
    store: MailStore
    queue: Queue | None = None
    clock: Callable[[], datetime] = utc_now

    def ingest(self, request: Request) -> Outcome:
        require_media_type(request, MEDIA_TYPE)
        check_basic(self.settings, request)
        check_size(self.settings, request)
        received = self.clock()
        with tracing.span(tracing.DECODE):
            mail = or_quarantine(
                lambda: self.decode(request),
                lambda reason: self.store.quarantine(request.body, MEDIA_TYPE, reason, received),
            )
        return commit(self.store, self.queue, mail, request.body, MEDIA_TYPE, received)

    @staticmethod
    def decode(request: Request) -> InboundMail:
        return dataclasses.replace(rfc822.decode(request.body, MODE), envelope=envelope(request))
