"""Postmark's inbound JSON → one InboundMail.

With ``RawEmail`` (the server's "Include raw email content" setting) the
message itself is decoded, as the relay decodes it: nothing Postmark parsed is
trusted over the original. Without it the mail is made from Postmark's fields:
``FromFull``, ``ToFull``, ``CcFull``, ``ReplyTo``, ``Subject``, ``Date``,
``TextBody``, ``HtmlBody``, ``Headers`` and ``Attachments`` (base64
``Content``). Either way the envelope recipient is ``OriginalRecipient``, and
the SPF result and spam score come from the headers Postmark adds.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import Any

from chalicelib.errors import MalformedMailError
from chalicelib.ingress import rfc822, verdicts
from chalicelib.mime import parts
from chalicelib.mime.addresses import Address, first_address, parse_addresses, parse_message_id
from chalicelib.mime.dates import parse_date
from chalicelib.mime.params import clean_filename
from chalicelib.mime.words import decode_words
from chalicelib.model import Attachment, Envelope, InboundMail

MODE = "postmark"


def document(body: bytes) -> dict[str, Any]:
    """The posted JSON object; MalformedMailError for anything else."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedMailError("the body is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedMailError("the body is not a JSON object")
    return value


def parse(posted: dict[str, Any]) -> InboundMail:
    raw = _text(posted, "RawEmail")
    headers = _headers(posted.get("Headers"))
    mail = rfc822.decode(raw.encode("utf-8", "surrogatepass"), MODE) if raw else _parsed(posted, headers)
    if not raw and not (mail.sender or mail.to or mail.text or mail.html or mail.headers):
        raise MalformedMailError("the JSON carries no message: no RawEmail, From, To, body or Headers")
    spf, score = verdicts.from_headers(headers, "received-spf", "x-spam-score")
    return dataclasses.replace(mail, envelope=_envelope(posted, headers), spf=spf, spam_score=score)


def raw_message(posted: dict[str, Any]) -> bytes | None:
    """The message as Postmark received it, when the server was told to include it."""
    raw = _text(posted, "RawEmail")
    return raw.encode("utf-8", "surrogatepass") if raw else None


def _parsed(posted: dict[str, Any], headers: list[tuple[str, str]]) -> InboundMail:
    def header(name: str) -> str | None:
        return next((value for key, value in headers if key.lower() == name), None)

    reply_to = _text(posted, "ReplyTo")
    return InboundMail(
        mode=MODE,
        message_id=parse_message_id(header("message-id")),
        date=parse_date(_text(posted, "Date") or header("date")),
        subject=decode_words(_text(posted, "Subject")) or None,
        sender=next(iter(_people(posted.get("FromFull"))), None) or first_address(_text(posted, "From")),
        to=_people(posted.get("ToFull")) or parse_addresses(_text(posted, "To")),
        cc=_people(posted.get("CcFull")) or parse_addresses(_text(posted, "Cc")),
        reply_to=parse_addresses(reply_to) if reply_to else [],
        envelope=None,
        text=_text(posted, "TextBody") or None,
        html=_text(posted, "HtmlBody") or None,
        headers=headers,
        attachments=_attachments(posted.get("Attachments")),
        spf=None, dkim=None, spam_score=None, spam_report=None, sender_ip=None,
    )


def _text(posted: dict[str, Any], name: str) -> str:
    value = posted.get(name)
    return value if isinstance(value, str) else ""


def _people(value: object) -> list[Address]:
    """``FromFull``/``ToFull``/``CcFull``: an object or a list of ``{"Email", "Name"}``."""
    entries = value if isinstance(value, list) else [value]
    found = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        email, name = entry.get("Email"), entry.get("Name")
        address = email.strip() if isinstance(email, str) else ""
        display = decode_words(name).strip() if isinstance(name, str) else ""
        if address or display:
            found.append({"name": display, "address": address})
    return found


def _headers(value: object) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return []
    return [
        (entry["Name"], decode_words(entry["Value"]).strip())
        for entry in value
        if isinstance(entry, dict) and isinstance(entry.get("Name"), str) and isinstance(entry.get("Value"), str)
    ]


def _attachments(value: object) -> list[Attachment]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedMailError("Attachments is not a list")
    found: list[Attachment] = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("Content"), str):
            raise MalformedMailError("an attachment has no Content")
        try:
            data = base64.b64decode(entry["Content"], validate=True)
        except (binascii.Error, ValueError):
            raise MalformedMailError("an attachment's Content is not base64") from None
        content_id = parts.content_id(entry.get("ContentID"))
        found.append(
            Attachment(
                index=len(found) + 1,
                filename=clean_filename(entry.get("Name")),
                content_type=parts.media_type(entry.get("ContentType")),
                content_id=content_id,
                disposition="inline" if content_id else "attachment",
                data=data,
            )
        )
    return found


def _envelope(posted: dict[str, Any], headers: list[tuple[str, str]]) -> Envelope | None:
    recipient = _text(posted, "OriginalRecipient").strip()
    return_path = next((value for key, value in headers if key.lower() == "return-path"), None)
    sender = first_address(return_path)
    found = sender["address"] if sender and sender["address"] else None
    return Envelope(found, (recipient,) if recipient else ()) if found or recipient else None
