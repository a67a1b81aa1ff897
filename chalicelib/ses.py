"""Amazon SES as a second ingress: a receipt rule writes the message to S3 and notifies us through SNS → SQS.

The notification carries what the object does not: the envelope recipients,
SES's verdicts and the object's key. The object is decoded with the same raw
MIME decoder as SendGrid's "Send Raw" mode and stays where SES wrote it (no
second copy); the mail's id is derived the same way as for SendGrid, so one
message received twice — SES retrying, or arriving through both — is stored
once.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import sendgrid
from chalicelib.clock import utc_now
from chalicelib.errors import MalformedMailError, PayloadTooLargeError
from chalicelib.handoff import Queue
from chalicelib.ingest import Outcome, commit
from chalicelib.mail import Envelope, InboundMail
from chalicelib.store import MailStore

# Where the receipt rule writes (infra/resources.json); nothing else is read.
SES_PREFIX = "ses/"
# SES accepts messages up to 40 MB; anything larger is not from SES.
MAX_MESSAGE_BYTES = 48 * 1024 * 1024
_VERDICTS = ("spam", "virus", "spf", "dkim", "dmarc")
_AUTH_DKIM = re.compile(r"\bdkim=(\w+)[^;]*?\bheader\.[di]=@?([^\s;]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Notice:
    """What one SES "Received" notification tells about one message."""

    bucket: str
    key: str
    recipients: tuple[str, ...]
    sender: str | None
    verdicts: dict[str, str | None]


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_notice(body: str) -> Notice:
    """The SQS message body: SNS's envelope around SES's JSON, or SES's JSON itself (raw delivery)."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
            data = json.loads(data["Message"])
    except ValueError:
        raise MalformedMailError("the notification is not JSON") from None
    if not isinstance(data, dict) or data.get("notificationType") != "Received":
        raise MalformedMailError("not an SES Received notification")
    receipt = _object(data.get("receipt"))
    action = _object(receipt.get("action"))
    bucket, key = action.get("bucketName"), action.get("objectKey")
    if action.get("type") != "S3" or not isinstance(bucket, str) or not isinstance(key, str):
        raise MalformedMailError("the notification names no S3 object")
    recipients = receipt.get("recipients")
    mail = _object(data.get("mail"))
    sender = mail.get("source")
    verdicts: dict[str, str | None] = {}
    for name in _VERDICTS:
        verdict = receipt.get(f"{name}Verdict")
        status = verdict.get("status") if isinstance(verdict, dict) else None
        verdicts[name] = status.lower() if isinstance(status, str) else None
    return Notice(
        bucket=bucket,
        key=key,
        recipients=tuple(r for r in recipients if isinstance(r, str)) if isinstance(recipients, list) else (),
        sender=sender if isinstance(sender, str) else None,
        verdicts=verdicts,
    )


def _header_verdicts(pairs: list[tuple[str, str]]) -> dict[str, str | None]:
    """The same verdicts from the headers SES adds, for a notification that lacks them."""
    found: dict[str, str | None] = dict.fromkeys(_VERDICTS)
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
        try:
            source = self.store.read_key(notice.key, MAX_MESSAGE_BYTES)
            mail = self.decode(source, notice)
        except (MalformedMailError, PayloadTooLargeError) as exc:
            key = self.store.quarantine_copy(notice.key, exc.message, received)
            raise type(exc)(exc.message, quarantine=key) from exc
        return commit(self.store, self.queue, mail, source, "message/rfc822", received, raw_key=notice.key)

    def decode(self, source: bytes, notice: Notice) -> InboundMail:
        if not source.strip():
            raise MalformedMailError("the stored message is empty")
        mail = sendgrid.raw_mail(source, "ses")
        if not mail.headers:
            raise MalformedMailError("the stored message has no headers")
        header_verdicts = _header_verdicts(mail.headers)
        verdicts = {name: notice.verdicts.get(name) or header_verdicts[name] for name in _VERDICTS}
        recipients = notice.recipients or tuple(a["address"] for a in mail.to + mail.cc)
        return dataclasses.replace(
            mail,
            envelope=Envelope(notice.sender, recipients),
            spf=verdicts["spf"],
            dkim=_dkim(mail.headers),
            verdicts=verdicts,
        )

