"""One Postmark inbound post: HTTP Basic, the optional source allow-list, the size bound, then the JSON."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address
from typing import Any

from chalicelib import tracing
from chalicelib.clock import utc_now
from chalicelib.config import Settings
from chalicelib.delivery.queue import Queue
from chalicelib.errors import AuthenticationError, NotFoundError
from chalicelib.ingress import Outcome, commit, or_quarantine
from chalicelib.ingress.postmark import payload
from chalicelib.ingress.request import Request, check_basic, check_size, require_media_type
from chalicelib.storage.store import MailStore

MEDIA_TYPE = "application/json"


def message_of(request: bytes, content_type: str, document: dict[str, Any]) -> bytes:
    """``GET /mails/{id}/eml``: the ``RawEmail`` Postmark included; without it there is no original to give."""
    found = payload.raw_message(payload.document(request))
    if found is None:
        raise NotFoundError("Postmark did not include the raw message (its server's RawEmail setting is off)")
    return found


@dataclass
class PostmarkIngestor:
    settings: Settings
    store: MailStore
    queue: Queue | None = None
    clock: Callable[[], datetime] = utc_now

    def ingest(self, request: Request) -> Outcome:
        require_media_type(request, MEDIA_TYPE)
        check_basic(self.settings, request)
        self._check_source(request.source_ip)
        check_size(self.settings, request)
        received = self.clock()
        with tracing.span(tracing.DECODE):
            mail = or_quarantine(
                lambda: payload.parse(payload.document(request.body)),
                lambda reason: self.store.quarantine(request.body, MEDIA_TYPE, reason, received),
            )
        return commit(self.store, self.queue, mail, request.body, MEDIA_TYPE, received)

    def _check_source(self, source_ip: str | None) -> None:
        """Off unless POSTMARK_IPS is set. A 401, never a 403: Postmark stops retrying on a 403."""
        networks = self.settings.postmark_networks
        if not networks:
            return
        try:
            address = ip_address(source_ip or "")
        except ValueError:
            raise AuthenticationError("source address unknown") from None
        if not any(address in network for network in networks):
            raise AuthenticationError("source address not allowed")
