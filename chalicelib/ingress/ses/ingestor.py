"""Amazon SES: a receipt rule writes the message to S3 and notifies us through SNS → SQS.

The object is decoded by ``mime`` and stays where SES wrote it (no second
copy); the mail's id is derived as for every ingress, so one message received
twice (SES retrying, or arriving through SES and another ingress) is stored once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chalicelib import tracing
from chalicelib.clock import utc_now
from chalicelib.delivery.queue import Queue
from chalicelib.errors import MalformedMailError
from chalicelib.ingress import Outcome, commit, or_quarantine
from chalicelib.ingress.ses.notice import VERDICTS, Notice
from chalicelib.mime import message
from chalicelib.model import Envelope, InboundMail
from chalicelib.storage.store import MailStore

# Where the receipt rule writes (infra/resources.json); nothing else is read.
SES_PREFIX = "ses/"
# SES accepts messages up to 40 MB; anything larger is not from SES.
MAX_MESSAGE_BYTES = 48 * 1024 * 1024
_AUTH_DKIM = re.compile(r"\bdkim=(\w+)[^;]*?\bheader\.[di]=@?([^\s;]+)", re.IGNORECASE)


def _header_verdicts(pairs: list[tuple[str, str]]) -> dict[str, str | None]:
    """The same verdicts from the headers SES adds, for a notification that lacks them."""
    found: dict[str, str | None] = dict.fromkeys(VERDICTS)
    for name, value in pairs:
        lowered = name.lower()
        word = value.strip().split(None, 1)[0].lower() if value.strip() else None
        if lowered == "x-ses-spam-verdict":
            found["spam"] = word
        elif lowered == "x-ses-virus-verdict":
            found["virus"] = word
        elif lowered == "received-spf" and found["spf"] is None:
            found["spf"] = word
        elif lowered == "authentication-results":
            for key in ("dkim", "dmarc", "spf"):
                match = re.search(rf"\b{key}=(\w+)", value, re.IGNORECASE)
                if match and found[key] is None:
                    found[key] = match.group(1).lower()
    return found


def _dkim(pairs: list[tuple[str, str]]) -> list[dict[str, str]] | None:
    """Per-domain DKIM results from Authentication-Results, as SendGrid's ``dkim`` field gives them."""
    entries = [
        {"domain": match.group(2).lower(), "result": match.group(1).lower()}
        for name, value in pairs
        if name.lower() == "authentication-results"
        for match in _AUTH_DKIM.finditer(value)
    ]
    return entries or None


@dataclass
class SesIngestor:
    bucket: str
    store: MailStore
    queue: Queue | None = None
    clock: Callable[[], datetime] = utc_now

    def ingest(self, notice: Notice) -> Outcome:
        if notice.bucket != self.bucket or not notice.key.startswith(SES_PREFIX):
            # Only the receipt rule's own objects are read, whatever a message claims.
            raise MalformedMailError("the notification names an object outside the SES prefix")
        received = self.clock()

        def keep_aside(reason: str) -> str:
            return self.store.quarantine_copy(notice.key, reason, received)

        source = or_quarantine(lambda: self.store.read_key(notice.key, MAX_MESSAGE_BYTES), keep_aside)
        with tracing.span(tracing.DECODE):
            mail = or_quarantine(lambda: self.decode(source, notice), keep_aside)
        return commit(self.store, self.queue, mail, source, "message/rfc822", received, raw_key=notice.key)

    def decode(self, source: bytes, notice: Notice) -> InboundMail:
        if not source.strip():
            raise MalformedMailError("the stored message is empty")
        mail = message.decode(source, mode="ses")
        if not mail.headers:
            raise MalformedMailError("the stored message has no headers")
        header_verdicts = _header_verdicts(mail.headers)
        verdicts = {name: notice.verdicts.get(name) or header_verdicts[name] for name in VERDICTS}
        recipients = notice.recipients or tuple(a["address"] for a in mail.to + mail.cc)
        return dataclasses.replace(
            mail,
            envelope=Envelope(notice.sender, recipients),
            spf=verdicts["spf"],
            dkim=_dkim(mail.headers),
            verdicts=verdicts,
        )

