"""Mailgun's forward() post, in either of its forms, → one InboundMail.

Mailgun posts ``multipart/form-data`` when the mail has attachments and
``application/x-www-form-urlencoded`` otherwise. A URL ending in ``mime``
gets the message itself in ``body-mime``, decoded as the relay decodes it;
any other gets Mailgun's parse: ``message-headers`` (a JSON list of
``[name, value]``, in order), ``body-plain`` and ``body-html`` (UTF-8),
``attachment-1`` … and ``content-id-map``. Either way ``recipient`` and
``sender`` are the SMTP envelope, and Mailgun's own headers its verdicts.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from chalicelib.errors import MalformedMailError, PayloadTooLargeError
from chalicelib.ingress import form as forms
from chalicelib.ingress import rfc822, verdicts
from chalicelib.mime import charsets, parts
from chalicelib.mime.addresses import first_address, parse_addresses, parse_message_id
from chalicelib.mime.dates import parse_date
from chalicelib.mime.params import clean_filename
from chalicelib.mime.text import no_surrogates
from chalicelib.mime.words import LINEAR_WHITESPACE, decode_words
from chalicelib.model import Attachment, Envelope, InboundMail

MODE = "mailgun"
FORM = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
_ATTACHMENT = re.compile(r"^attachment-([0-9]{1,4})$")


@dataclass(frozen=True)
class Post:
    """The post's fields (bytes) and file parts, whichever of Mailgun's two encodings carried them."""

    fields: Mapping[str, bytes]
    files: Mapping[str, forms.FilePart]

    def text(self, name: str) -> str | None:
        raw = self.fields.get(name)
        return None if raw is None else no_surrogates(charsets.decode(raw, "utf-8"))


def read(body: bytes, content_type: str | None) -> Post:
    """The post; MalformedMailError for a body its own media type cannot read, or a field given twice."""
    if (content_type or "").split(";", 1)[0].strip().lower() == URLENCODED:
        if body.count(b"&") >= forms.MAX_PARTS:
            raise PayloadTooLargeError(f"the form has more than {forms.MAX_PARTS} fields")
        # Latin-1 maps each byte to one character and back: the values come out as the bytes they were.
        pairs = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
        ]
        fields: dict[str, bytes] = {}
        for name, value in pairs:
            key = name.decode("utf-8", "replace")
            if key in fields:
                raise MalformedMailError("the form carries a field twice")
            fields[key] = value
        return Post(fields, {})
    form = forms.parse(body, content_type)
    return Post(form.fields, form.files)


def parse(post: Post) -> InboundMail:
    mime = post.fields.get("body-mime")
    if mime is None and "body-mime" in post.files:
        mime = bytes(post.files["body-mime"].data)
    if mime is not None:
        mail = rfc822.decode(mime, MODE)
    elif "message-headers" in post.fields or "body-plain" in post.fields:
        mail = _parsed(post)
    else:
        raise MalformedMailError("the form carries neither body-mime nor message-headers/body-plain")
    spf, score = verdicts.from_headers(mail.headers, "x-mailgun-spf", "x-mailgun-sscore")
    return dataclasses.replace(mail, envelope=_envelope(post), spf=spf, spam_score=score)


def message_of(post: Post) -> bytes | None:
    """The message itself, when Mailgun posted it (the ``mime`` URL)."""
    if "body-mime" in post.files:
        return bytes(post.files["body-mime"].data)
    return post.fields.get("body-mime")


def _parsed(post: Post) -> InboundMail:
    raw = _header_pairs(post.text("message-headers"))
    pairs = [(name, decode_words(value).strip(LINEAR_WHITESPACE)) for name, value in raw]

    def first(found: list[tuple[str, str]], name: str) -> str | None:
        return next((value for key, value in found if key.lower() == name), None)

    def every(name: str) -> list[dict[str, str]]:  # parsed before the names are decoded: a name may hold a comma
        value = ", ".join(value for key, value in raw if key.lower() == name)
        return parse_addresses(value) if value else []

    reply_to = first(raw, "reply-to")
    return InboundMail(
        mode=MODE,
        message_id=parse_message_id(first(pairs, "message-id")),
        date=parse_date(first(pairs, "date")),
        subject=post.text("subject") if "subject" in post.fields else first(pairs, "subject"),
        sender=first_address(first(raw, "from") or post.text("from")),
        to=every("to"),
        cc=every("cc"),
        reply_to=parse_addresses(reply_to) if reply_to else [],
        envelope=None,
        text=post.text("body-plain") or None,
        html=post.text("body-html") or None,
        headers=pairs,
        attachments=_attachments(post),
        spf=None, dkim=None, spam_score=None, spam_report=None, sender_ip=None,
    )


def _header_pairs(value: str | None) -> list[tuple[str, str]]:
    if value is None:
        return []
    try:
        found = json.loads(value)
    except (ValueError, RecursionError):
        raise MalformedMailError("message-headers is not JSON") from None
    if not isinstance(found, list):
        raise MalformedMailError("message-headers is not a list")
    return [
        (entry[0], entry[1])
        for entry in found
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], str)
    ]


def _attachments(post: Post) -> list[Attachment]:
    content_ids: dict[str, str] = {}
    raw_map = post.text("content-id-map")
    if raw_map:
        try:
            found = json.loads(raw_map)
        except (ValueError, RecursionError):
            found = {}
        if isinstance(found, dict):
            content_ids = {name: cid for cid, name in found.items() if isinstance(name, str)}
    numbered = sorted(
        (int(match.group(1)), name, part)
        for name, part in post.files.items()
        if (match := _ATTACHMENT.match(name))
    )
    attachments = []
    for position, (_, name, part) in enumerate(numbered, start=1):
        content_id = parts.content_id(content_ids.get(name))
        attachments.append(
            Attachment(
                index=position,
                filename=clean_filename(part.filename),
                content_type=parts.media_type(part.content_type),
                content_id=content_id,
                disposition="inline" if content_id else "attachment",
                data=part.data,
            )
        )
    return attachments


def _envelope(post: Post) -> Envelope | None:
    recipients = tuple(entry["address"] for entry in parse_addresses(post.text("recipient") or ""))
    sender = first_address(post.text("sender"))
    found = sender["address"] if sender and sender["address"] else None
    return Envelope(found, recipients) if found or recipients else None
