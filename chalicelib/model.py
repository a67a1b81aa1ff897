"""The mail, one shape whichever way it arrived: InboundMail as decoded, StoredMail as its handlers see it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.errors import NotConfiguredError

if TYPE_CHECKING:
    from email.message import EmailMessage

Address = dict[str, str]


@dataclass(frozen=True)
class Attachment:
    index: int
    filename: str | None
    content_type: str
    content_id: str | None
    disposition: str
    # A view into the request body where possible, else the buffer it was
    # decoded into, so that a large attachment is neither copied nor kept in the item.
    data: bytes | bytearray | memoryview = field(repr=False, compare=False)
    size: int = field(init=False)
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", len(self.data))
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "content_id": self.content_id,
            "disposition": self.disposition,
        }


@dataclass(frozen=True)
class Envelope:
    sender: str | None
    recipients: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.sender, "to": list(self.recipients)}


@dataclass(frozen=True)
class InboundMail:
    mode: str
    message_id: str | None
    date: str | None
    subject: str | None
    sender: Address | None
    to: list[Address]
    cc: list[Address]
    reply_to: list[Address]
    envelope: Envelope | None
    text: str | None
    html: str | None
    headers: list[tuple[str, str]]
    attachments: list[Attachment]
    spf: str | None
    dkim: list[dict[str, str]] | None
    spam_score: float | None
    spam_report: str | None
    sender_ip: str | None
    # SES's verdicts (spam, virus, spf, dkim, dmarc); None for SendGrid's posts.
    verdicts: dict[str, str | None] | None = None

    def header(self, name: str) -> str | None:
        """The first value of a header, by name in any case, as decoded."""
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), None)

    def recipients(self) -> list[str]:
        """Lower-cased envelope recipients, else the To and Cc addresses: the mailboxes this mail is filed under."""
        if self.envelope and self.envelope.recipients:
            addresses = list(self.envelope.recipients)
        else:
            addresses = [a["address"] for a in self.to + self.cc]
        seen: dict[str, None] = {}
        for address in addresses:
            address = address.strip().lower()
            if address:
                seen.setdefault(address, None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "message_id": self.message_id,
            "date": self.date,
            "subject": self.subject,
            "from": self.sender,
            "to": self.to,
            "cc": self.cc,
            "reply_to": self.reply_to,
            "envelope": self.envelope.to_dict() if self.envelope else None,
            "text": self.text,
            "html": self.html,
            "headers": [[name, value] for name, value in self.headers],
            "attachments": [a.to_dict() for a in self.attachments],
            "spf": self.spf,
            "dkim": self.dkim,
            "spam_score": self.spam_score,
            "spam_report": self.spam_report,
            "sender_ip": self.sender_ip,
            "verdicts": self.verdicts,
        }


class Content(Protocol):
    """Where a stored mail's bytes are read from, when asked (``storage/content.py``)."""

    def attachment_bytes(self, mail_id: str, index: int) -> bytes: ...

    def raw_message(self, document: dict[str, Any]) -> bytes: ...


@dataclass(frozen=True)
class StoredMail:
    """A stored mail as its handlers see it: the contract's JSON, typed; the bytes read from S3 only when asked."""

    id: str
    received_at: str
    subject: str | None
    sender: Address | None
    to: list[Address]
    cc: list[Address]
    envelope_to: list[str]
    message_id: str | None
    text: str | None
    html: str | None
    headers: list[tuple[str, str]]
    attachments: list[dict[str, Any]]
    document: dict[str, Any] = field(repr=False, compare=False)
    content: Content | None = field(default=None, repr=False, compare=False)
    _message: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_document(cls, document: dict[str, Any], content: Content | None = None) -> StoredMail:
        envelope = document.get("envelope") or {}
        recipients = envelope.get("to") or [a["address"] for a in document["to"] + document["cc"]]
        return cls(
            id=document["id"],
            received_at=document["received_at"],
            subject=document["subject"],
            sender=document["from"],
            to=document["to"],
            cc=document["cc"],
            envelope_to=[address.strip().lower() for address in recipients if address.strip()],
            message_id=document["message_id"],
            text=document["text"],
            html=document["html"],
            headers=[(name, value) for name, value in document["headers"]],
            attachments=document["attachments"],
            document=document,
            content=content,
        )

    def _content(self) -> Content:
        if self.content is None:
            raise NotConfiguredError("this StoredMail was made without access to the stored bytes")
        return self.content

    def attachment_bytes(self, index: int) -> bytes:
        """An attachment's bytes, by its ``index`` in ``attachments`` (1 for the first)."""
        return self._content().attachment_bytes(self.id, index)

    def raw_message(self) -> bytes:
        """The message in RFC 5322 form: the original for raw mode and SES, rebuilt for parsed mode.

        Read once, then kept for the life of this object.
        """
        if self._message is None:
            object.__setattr__(self, "_message", self._content().raw_message(self.document))  # frozen: a cache
        assert self._message is not None
        return self._message

    def message(self) -> EmailMessage:
        """``raw_message()`` parsed by the stdlib with its modern policy; a new object each call."""
        # Only a handler asks for it: the email package stays out of every other cold start.
        from email import policy  # noqa: PLC0415
        from email.parser import BytesParser  # noqa: PLC0415

        return BytesParser(policy=policy.default).parsebytes(self.raw_message())

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), None)

    @property
    def envelope_from(self) -> str | None:
        """The envelope sender (SMTP's MAIL FROM), when the provider gave it."""
        sender: str | None = (self.document.get("envelope") or {}).get("from")
        return sender

    @property
    def spf(self) -> str | None:
        """The provider's SPF result for the envelope sender's domain."""
        result: str | None = self.document.get("spf")
        return result

    @property
    def dkim(self) -> list[dict[str, str]]:
        """The provider's DKIM results, one per signing domain."""
        results: list[dict[str, str]] = self.document.get("dkim") or []
        return results

    @property
    def verdicts(self) -> dict[str, str | None]:
        """SES's verdicts (spam, virus, spf, dkim, dmarc); empty for another provider."""
        found: dict[str, str | None] = self.document.get("verdicts") or {}
        return found
