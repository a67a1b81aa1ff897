"""SendGrid's Inbound Parse form, in either mode, → one InboundMail.

Parsed mode posts the mail's parts as fields in the mail's own charsets, named
in ``charsets``; "Send Raw" posts the whole message in ``email``. Nothing here
trusts the payload: every field may be absent or junk, and a junk field becomes
``None``, never an exception (SendGrid cannot fix a mail by retrying it).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any

from chalicelib import charsets, headers
from chalicelib.errors import MalformedMailError, PayloadTooLargeError
from chalicelib.mail import Address, Attachment, Envelope, InboundMail
from chalicelib.multipart import Form

_DKIM_ENTRY = re.compile(r"^\s*@?([^\s:@{},]+)\s*:\s*([A-Za-z_-]+)\s*$")
_ATTACHMENT_FIELD = re.compile(r"^attachment(\d{1,4})$")
MAX_MIME_DEPTH = 32
MAX_MIME_PARTS = 1000


def _json_object(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(charsets.decode(raw, "utf-8"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _ascii_field(form: Form, name: str) -> str | None:
    raw = form.fields.get(name)
    if raw is None:
        return None
    value = charsets.decode(raw, "utf-8").strip()
    return value or None


def _envelope(form: Form) -> Envelope | None:
    data = _json_object(form.fields.get("envelope"))
    if not data:
        return None
    sender = data.get("from")
    recipients = data.get("to")
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, list):
        recipients = []
    return Envelope(
        sender if isinstance(sender, str) else None,
        tuple(r for r in recipients if isinstance(r, str)),
    )


def _dkim(value: str | None) -> list[dict[str, str]] | None:
    """``{@example.com : pass, @other.org : fail}`` → entries; junk → None."""
    if value is None:
        return None
    value = value.strip()
    if value.lower() == "none" or value == "{}":
        return []
    if not (value.startswith("{") and value.endswith("}")):
        return None
    entries = []
    for item in value[1:-1].split(","):
        match = _DKIM_ENTRY.match(item)
        if not match:
            return None
        entries.append({"domain": match.group(1), "result": match.group(2).lower()})
    return entries


def _spam_score(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        score = float(value)
    except ValueError:
        return None
    return score if math.isfinite(score) else None


def _sender_ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _header(pairs: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for key, value in pairs:
        if key.lower() == name:
            return value
    return None


def _first_address(addresses: list[Address]) -> Address | None:
    return addresses[0] if addresses else None


def _strip_cid(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().strip("<>").strip()
    return value or None


def parse(form: Form) -> InboundMail:
    if "email" in form.fields or "email" in form.files:
        return _raw(form)
    if any(name in form.fields for name in ("headers", "text", "html")):
        return _parsed(form)
    raise MalformedMailError("the form carries neither headers/text/html nor email")


def _common(form: Form) -> dict[str, Any]:
    spam_report = form.fields.get("spam_report")
    return {
        "envelope": _envelope(form),
        "spf": _ascii_field(form, "SPF"),
        "dkim": _dkim(_ascii_field(form, "dkim")),
        "spam_score": _spam_score(_ascii_field(form, "spam_score")),
        "spam_report": charsets.decode(spam_report, "utf-8") if spam_report is not None else None,
        "sender_ip": _sender_ip(_ascii_field(form, "sender_ip")),
    }


def _parsed(form: Form) -> InboundMail:
    names = _json_object(form.fields.get("charsets"))

    def text(field: str) -> str | None:
        raw = form.fields.get(field)
        if raw is None:
            return None
        label = names.get(field)
        return charsets.decode(raw, label if isinstance(label, str) else None)

    header_label = names.get("headers")
    pairs = headers.parse_header_block(
        form.fields.get("headers", b""), header_label if isinstance(header_label, str) else None
    )

    def addresses(field: str, header: str) -> list[Address]:
        value = text(field)
        if value is None:
            value = _header(pairs, header)
        return headers.parse_addresses(value) if value else []

    subject = text("subject")
    if subject is None:
        subject = _header(pairs, "Subject")
    return InboundMail(
        mode="parsed",
        message_id=headers.parse_message_id(_header(pairs, "Message-ID")),
        date=headers.parse_date(_header(pairs, "Date")),
        subject=headers.decode_words(subject) if subject is not None else None,
        sender=_first_address(addresses("from", "From")),
        to=addresses("to", "To"),
        cc=addresses("cc", "Cc"),
        reply_to=headers.parse_addresses(_header(pairs, "Reply-To") or ""),
        text=text("text"),
        html=text("html"),
        headers=pairs,
        attachments=_parsed_attachments(form),
        **_common(form),
    )


def _parsed_attachments(form: Form) -> list[Attachment]:
    info = _json_object(form.fields.get("attachment-info"))
    content_ids = _json_object(form.fields.get("content-ids"))
    cid_of = {v: k for k, v in content_ids.items() if isinstance(v, str)}
    numbered = sorted(
        (int(match.group(1)), part)
        for name, part in form.files.items()
        if (match := _ATTACHMENT_FIELD.match(name))
    )
    attachments = []
    for position, (_, part) in enumerate(numbered, start=1):
        details = info.get(part.name)
        details = details if isinstance(details, dict) else {}
        filename = details.get("filename")
        if not isinstance(filename, str):
            filename = part.filename
        content_type = details.get("type")
        if not isinstance(content_type, str) or not content_type:
            content_type = part.content_type or "application/octet-stream"
        content_id = details.get("content-id")
        if not isinstance(content_id, str):
            content_id = cid_of.get(part.name)
        content_id = _strip_cid(content_id)
        attachments.append(
            Attachment(
                index=position,
                filename=headers.decode_words(filename) if filename else (filename or None),
                content_type=content_type.strip().lower(),
                content_id=content_id,
                disposition="inline" if content_id else "attachment",
                data=part.data,
            )
        )
    return attachments


def _raw_header_text(value: str) -> str:
    # compat32 hands 8-bit header bytes over as surrogate escapes; RFC 6532 says
    # they are UTF-8, and the charset table decides what they become otherwise.
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        value = charsets.decode(value.encode("ascii", "surrogateescape"), "utf-8")
    return headers.decode_words(value)


def _raw(form: Form) -> InboundMail:
    source = form.fields.get("email")
    if source is None:
        source = bytes(form.files["email"].data)
    # compat32 keeps header values raw, so that headers.py decodes them with our
    # charset table (CP932, WHATWG labels); policy.default would decode them with
    # Python's strict codecs first.
    try:
        message = BytesParser(policy=policy.compat32).parsebytes(source)
    except RecursionError:
        # The stdlib parser recurses once per nesting level; about a thousand
        # levels exhaust the stack, and nothing legitimate nests so deep.
        raise PayloadTooLargeError("the message nests too deep") from None
    pairs = [(name, _raw_header_text(str(value)).strip()) for name, value in message.raw_items()]
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    for part in _leaves(message):
        content_type = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = headers.attachment_filename(
            _optional(part.get("Content-Disposition")), _optional(part.get("Content-Type"))
        )
        body_like = disposition != "attachment" and filename is None
        if body_like and content_type in ("text/plain", "text/html"):
            payload = part.get_payload(decode=True)
            decoded = charsets.decode(payload if isinstance(payload, bytes) else b"", part.get_content_charset())
            (texts if content_type == "text/plain" else htmls).append(decoded)
            continue
        attachments.append(
            Attachment(
                index=len(attachments) + 1,
                filename=filename,
                content_type=content_type,
                content_id=_strip_cid(_optional(part.get("Content-ID"))),
                disposition=disposition or ("inline" if part.get("Content-ID") else "attachment"),
                data=_part_bytes(part),
            )
        )
    return InboundMail(
        mode="raw",
        message_id=headers.parse_message_id(_header(pairs, "Message-ID")),
        date=headers.parse_date(_header(pairs, "Date")),
        subject=_header(pairs, "Subject"),
        sender=_first_address(headers.parse_addresses(_header(pairs, "From") or "")),
        to=headers.parse_addresses(", ".join(v for k, v in pairs if k.lower() == "to")),
        cc=headers.parse_addresses(", ".join(v for k, v in pairs if k.lower() == "cc")),
        reply_to=headers.parse_addresses(_header(pairs, "Reply-To") or ""),
        text="\n".join(texts) if texts else None,
        html="\n".join(htmls) if htmls else None,
        headers=pairs,
        attachments=attachments,
        **_common(form),
    )


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def _leaves(message: Message) -> list[Message]:
    """Every non-multipart part in order; a forwarded ``message/rfc822`` is one leaf, not descended into.

    Iterative, with bounds on depth and count, so that a hostile nesting costs
    neither the stack nor unbounded time.
    """
    leaves: list[Message] = []
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        if part.get_content_maintype() == "multipart" and part.is_multipart():
            if depth >= MAX_MIME_DEPTH:
                raise PayloadTooLargeError(f"the message nests more than {MAX_MIME_DEPTH} multiparts deep")
            children = [child for child in part.get_payload() if isinstance(child, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))
            continue
        leaves.append(part)
        if len(leaves) > MAX_MIME_PARTS:
            raise PayloadTooLargeError(f"the message has more than {MAX_MIME_PARTS} parts")
    return leaves


def _part_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822" and part.is_multipart():
        inner = part.get_payload(0)
        return inner.as_bytes() if isinstance(inner, Message) else b""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""
