"""SendGrid's parsed mode → InboundMail.

The form carries the mail's parts as fields: ``text`` and ``html`` in the
mail's own charsets, ``subject``/``from``/``to``/``cc`` (usually decoded from
RFC 2047 already, usually as UTF-8), each charset named in ``charsets``,
beside the raw header block in ``headers`` and the attachments as
``attachmentN`` parts described by ``attachment-info``.
"""

from __future__ import annotations

import re

from chalicelib.ingress.form import Form, json_object
from chalicelib.ingress.sendgrid.extras import Extras
from chalicelib.mime import charsets, headers, parts
from chalicelib.mime.addresses import Address, parse_addresses, parse_message_id
from chalicelib.mime.dates import parse_date
from chalicelib.mime.params import clean_filename
from chalicelib.mime.words import LINEAR_WHITESPACE, decode_words
from chalicelib.model import Attachment, InboundMail

_ATTACHMENT_FIELD = re.compile(r"^attachment(\d{1,4})$")
_HEADER_FIELDS = frozenset({"subject", "from", "to", "cc"})
_BLANKS = re.compile(r"\s+")


def decode(form: Form, extras: Extras) -> InboundMail:
    fields = _Fields(form)
    return InboundMail(
        mode="parsed",
        message_id=parse_message_id(headers.first_header(fields.headers, "Message-ID")),
        date=parse_date(headers.first_header(fields.headers, "Date")),
        subject=fields.subject(),
        sender=next(iter(fields.addresses("from", "From")), None),
        to=fields.addresses("to", "To"),
        cc=fields.addresses("cc", "Cc"),
        reply_to=_addresses(fields.raw_header("Reply-To", "reply_to")),
        text=fields.text("text"),
        html=fields.html(),
        headers=fields.headers,
        attachments=_attachments(form),
        **extras,
    )


def _addresses(value: str | None) -> list[Address]:
    return parse_addresses(value) if value else []


class _Fields:
    """The form's fields, read in the charsets it names."""

    def __init__(self, form: Form) -> None:
        self._form = form
        names = json_object(form.fields.get("charsets"))
        self._labels = {name: value for name, value in names.items() if isinstance(value, str)}
        label = self._labels.get
        # Raw 8-bit bytes in the header block (no RFC 2047) are read in the first charset the
        # form names that is neither UTF-8 nor windows-1252: the sender's own, most likely.
        self._hint = charsets.charset_hint(*(label(field) for field in ("headers", "subject", "from", "text", "html")))
        raw_headers = headers.split_header_block(form.fields.get("headers", b""))
        self.headers = headers.decode_header_pairs(raw_headers, label("headers") or self._hint)
        self._raw_by_name: dict[str, list[bytes]] = {}
        for name, value in raw_headers:
            self._raw_by_name.setdefault(name.lower(), []).append(value)

    def text(self, field: str) -> str | None:
        raw = self._form.fields.get(field)
        if raw is None:
            return None
        label = self._labels.get(field)
        if field in _HEADER_FIELDS and charsets.codec_for(label) is None:
            # No charset named, or one that names nothing ("unknown-8bit"): a raw header value.
            return headers.header_text(raw, self._hint)
        return charsets.decode(raw, label)

    def html(self) -> str | None:
        html = self._form.fields.get("html")
        return None if html is None else charsets.decode_html(html, self._labels.get("html"))

    def raw_header(self, name: str, field: str) -> str | None:
        """Every value of a header in the block, joined, as text with its words still encoded.

        Addresses are parsed before their display names are decoded: a decoded
        name may hold a comma, a quote or an "@" (SendGrid's own ``from`` field
        has lost that structure).
        """
        values = self._raw_by_name.get(name.lower())
        if not values:
            return None
        hint = charsets.charset_hint(self._labels.get(field)) or self._hint
        return ", ".join(headers.header_text(value, hint) for value in values)

    def addresses(self, field: str, name: str) -> list[Address]:
        return _addresses(self.raw_header(name, field)) or _addresses(self.text(field))

    def subject(self) -> str | None:
        """SendGrid's ``subject``, unless it is garbled where the header block's is not.

        Where the two say the same but for blanks, the block's, read as raw mode
        reads it, is taken: a decoder other than ours may space the words otherwise
        (Python's ``decode_header`` drops the blank between plain text and an RFC
        2047 word) or keep trailing blanks.
        """
        field = self.text("subject")
        if field is not None:
            field = decode_words(field).strip(LINEAR_WHITESPACE)  # some senders' subjects come still encoded
        from_block = headers.first_header(self.headers, "Subject")
        if from_block is None:
            return field
        if field is None or ("\ufffd" in field and "\ufffd" not in from_block):
            return from_block
        return from_block if _BLANKS.sub("", field) == _BLANKS.sub("", from_block) else field


def _attachments(form: Form) -> list[Attachment]:
    info = json_object(form.fields.get("attachment-info"))
    cid_of = {v: k for k, v in json_object(form.fields.get("content-ids")).items() if isinstance(v, str)}
    attachments = []
    for position, (name, part_filename, part_type, data) in enumerate(numbered_parts(form), start=1):
        details = info.get(name)
        details = details if isinstance(details, dict) else {}
        content_type = details.get("type")
        if not isinstance(content_type, str) or not content_type.strip():
            content_type = part_type
        content_id = parts.content_id(details.get("content-id")) or parts.content_id(cid_of.get(name))
        attachments.append(
            Attachment(
                index=position,
                filename=_filename(details.get("filename"), details.get("name"), part_filename),
                content_type=parts.media_type(content_type),
                content_id=content_id,
                disposition="inline" if content_id else "attachment",
                data=data,
            )
        )
    return attachments


def numbered_parts(form: Form) -> list[tuple[str, str | None, str | None, bytes | memoryview]]:
    """The ``attachmentN`` parts in the order of N: a gap (a part a proxy dropped) leaves no hole in the index."""
    numbered: list[tuple[int, str, str | None, str | None, bytes | memoryview]] = []
    for name, part in form.files.items():
        if match := _ATTACHMENT_FIELD.match(name):
            numbered.append((int(match.group(1)), name, part.filename, part.content_type, part.data))
    for name in form.fields:  # by name: a field's bytes are cut from the body only when read
        if (match := _ATTACHMENT_FIELD.match(name)) and name not in form.files:  # a file part without a filename
            numbered.append((int(match.group(1)), name, None, None, form.fields[name]))
    numbered.sort(key=lambda entry: entry[0])
    return [entry[1:] for entry in numbered]


def _filename(*candidates: object) -> str | None:
    """The first name given that is not empty once cleaned: attachment-info's, then the part's own."""
    for candidate in candidates:
        if isinstance(candidate, str):
            filename = clean_filename(decode_words(candidate))
            if filename:
                return filename
    return None
