"""SendGrid's Inbound Parse form, in either mode, → one InboundMail.

Parsed mode posts the mail's parts as fields: ``text`` and ``html`` in the mail's
own charsets and ``subject``/``from``/``to``/``cc`` (usually already decoded from
RFC 2047, usually as UTF-8), each charset named in ``charsets``, beside the raw
header block in ``headers``. "Send Raw" posts the whole message in ``email``.
Nothing here trusts the payload: every field may be absent or junk, and a junk
field becomes ``None``, never an exception (SendGrid cannot fix a mail by
retrying it). Every string handed out is Unicode without lone surrogates, so
that the stored JSON always encodes as UTF-8.
"""

from __future__ import annotations

import binascii
import dataclasses
import ipaddress
import json
import math
import re
from collections.abc import Callable
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser
from typing import Any, TypeVar

from chalicelib import charsets, headers, mimetree
from chalicelib.errors import MalformedMailError, PayloadTooLargeError
from chalicelib.mail import Address, Attachment, Envelope, InboundMail
from chalicelib.multipart import Form

_DKIM_ENTRY = re.compile(r"^\s*@?([^\s:@{},]+)\s*:\s*([A-Za-z_-]+)\s*$")
_ATTACHMENT_FIELD = re.compile(r"^attachment(\d{1,4})$")
# RFC 6838 type and subtype names; anything else is stored as application/octet-stream,
# since the type becomes an S3 object's Content-Type header.
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_SPF_RESULTS = frozenset({"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"})
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")
_ASCII_LABELS = frozenset({"usascii", "ascii", "ansix341968", "us", "iso646us"})
_HEADER_FIELDS = frozenset({"subject", "from", "to", "cc"})
MAX_MIME_DEPTH = 32
MAX_MIME_PARTS = 1000

_T = TypeVar("_T")
# A part's bytes: decoded into a new buffer, or a view of the request body when sent as is.
Buffer = bytes | bytearray | memoryview


def _safe(call: Callable[[], _T], default: _T) -> _T:
    """The email package's accessors on hostile headers: their answer, or the default when they raise."""
    try:
        return call()
    except Exception:
        return default


def _text(value: str) -> str:
    """No lone surrogate may reach the store: json.dumps(...).encode("utf-8") would raise on it."""
    return _LONE_SURROGATE.sub("\ufffd", value)


def _json_object(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(charsets.decode(raw, "utf-8"))
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _ascii_field(form: Form, name: str) -> str | None:
    raw = form.fields.get(name)
    if raw is None:
        return None
    value = _text(charsets.decode(raw, "utf-8")).strip()
    return value or None


def _envelope(form: Form) -> Envelope | None:
    """``{"to": [...], "from": "..."}``; None unless it names a sender or a recipient."""
    data = _json_object(form.fields.get("envelope"))
    sender = data.get("from")
    recipients = data.get("to")
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, list):
        recipients = []
    found = tuple(_text(r).strip() for r in recipients if isinstance(r, str) and r.strip())
    sender = _text(sender).strip() if isinstance(sender, str) else None
    if sender is None and not found:
        return None
    return Envelope(sender, found)


def _dkim(value: str | None) -> list[dict[str, str]] | None:
    """``{@example.com : pass, @other.org : fail}`` → entries; ``none`` → []; junk → None."""
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


def _spf(value: str | None) -> str | None:
    """One of RFC 7208's results (the first word, lower-cased); anything else → None."""
    words = (value or "").split()
    result = words[0].lower() if words else ""
    return result if result in _SPF_RESULTS else None


def _spam_score(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        score = float(value)
    except ValueError:
        return None
    return score if math.isfinite(score) else None


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# An IPv4 address as ipaddress writes it (no leading zeros): what every post carries, at a tenth of the cost.
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _sender_ip(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip("[]")
    if _CANONICAL_IPV4.fullmatch(value):
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _media_type(value: object) -> str:
    if isinstance(value, str):
        candidate = value.split(";", 1)[0].strip().lower()
        if _MEDIA_TYPE.fullmatch(candidate):
            return candidate
    return "application/octet-stream"


def _header(pairs: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for key, value in pairs:
        if key.lower() == name:
            return value
    return None


def _addresses(value: str | None) -> list[Address]:
    return headers.parse_addresses(value) if value else []


def _first_address(addresses: list[Address]) -> Address | None:
    return addresses[0] if addresses else None


def _content_id(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = _WHITESPACE.sub("", _text(value)).strip("<>")
    return value or None


def _is_ascii_label(label: str | None) -> bool:
    return label is None or re.sub(r"[^a-z0-9]", "", label.lower()) in _ASCII_LABELS


def _html(data: bytes, label: str | None) -> str:
    """An HTML part: its MIME (or ``charsets``) label wins; without one, its own ``<meta charset>``."""
    if _is_ascii_label(label) and not data.isascii():
        label = charsets.html_meta_charset(data) or label
    return charsets.decode(data, label)


def _hint(*labels: object) -> str | None:
    """The first label that says more than "UTF-8 or windows-1252", for raw 8-bit headers.

    Only charsets that keep ASCII as ASCII can explain 8-bit bytes among ASCII ones; UTF-7,
    UTF-16 and UTF-32 cannot.
    """
    for label in labels:
        if not isinstance(label, str):
            continue
        codec = charsets.codec_for(label)
        if codec is not None and codec != "cp1252" and not codec.startswith("utf"):
            return label
    return None


def parse(form: Form) -> InboundMail:
    if "email" in form.fields or "email" in form.files:
        mail = _raw(form)
    elif any(name in form.fields for name in ("headers", "text", "html")):
        mail = _parsed(form)
    else:
        raise MalformedMailError("the form carries neither headers/text/html nor email")
    return _scrubbed(mail)


def _common(form: Form) -> dict[str, Any]:
    spam_report = form.fields.get("spam_report")
    return {
        "envelope": _envelope(form),
        "spf": _spf(_ascii_field(form, "SPF")),
        "dkim": _dkim(_ascii_field(form, "dkim")),
        "spam_score": _spam_score(_ascii_field(form, "spam_score")),
        "spam_report": charsets.decode(spam_report, "utf-8") if spam_report is not None else None,
        "sender_ip": _sender_ip(_ascii_field(form, "sender_ip")),
    }


# ---------------------------------------------------------------------------------------------
# Parsed mode


def _parsed(form: Form) -> InboundMail:
    names = {name: value for name, value in _json_object(form.fields.get("charsets")).items() if isinstance(value, str)}
    label = names.get

    # Raw 8-bit bytes in the header block (no RFC 2047) are read in the first charset the
    # form names that is neither UTF-8 nor windows-1252: the sender's own, most likely.
    hint = _hint(label("headers"), label("subject"), label("from"), label("text"), label("html"))

    def field_text(field: str) -> str | None:
        raw = form.fields.get(field)
        if raw is None:
            return None
        if field in _HEADER_FIELDS and charsets.codec_for(label(field)) is None:
            # No charset named, or one that names nothing ("unknown-8bit"): a raw header value.
            return headers.header_text(raw, hint)
        return charsets.decode(raw, label(field))

    raw_headers = headers.split_header_block(form.fields.get("headers", b""))
    pairs = headers.decode_header_pairs(raw_headers, label("headers") or hint)
    raw_by_name: dict[str, list[bytes]] = {}
    for name, value in raw_headers:
        raw_by_name.setdefault(name.lower(), []).append(value)

    def raw_header(name: str, field: str) -> str | None:
        # Addresses are parsed before their display names are decoded: a decoded name may
        # hold a comma, a quote or an "@" (SendGrid's own `from` field has lost that structure).
        values = raw_by_name.get(name.lower())
        if not values:
            return None
        return ", ".join(headers.header_text(value, _hint(label(field)) or hint) for value in values)

    def addresses(field: str, name: str) -> list[Address]:
        return _addresses(raw_header(name, field)) or _addresses(field_text(field))

    subject = field_text("subject")
    if subject is not None:
        subject = headers.decode_words(subject)  # some senders' subjects come still encoded
    header_subject = _header(pairs, "Subject")
    if subject is None or ("\ufffd" in subject and header_subject and "\ufffd" not in header_subject):
        subject = header_subject
    html = form.fields.get("html")
    return InboundMail(
        mode="parsed",
        message_id=headers.parse_message_id(_header(pairs, "Message-ID")),
        date=headers.parse_date(_header(pairs, "Date")),
        subject=subject,
        sender=_first_address(addresses("from", "From")),
        to=addresses("to", "To"),
        cc=addresses("cc", "Cc"),
        reply_to=_addresses(raw_header("Reply-To", "reply_to")),
        text=field_text("text"),
        html=None if html is None else _html(html, label("html")),
        headers=pairs,
        attachments=_parsed_attachments(form),
        **_common(form),
    )


def _parsed_attachments(form: Form) -> list[Attachment]:
    info = _json_object(form.fields.get("attachment-info"))
    content_ids = _json_object(form.fields.get("content-ids"))
    cid_of = {v: k for k, v in content_ids.items() if isinstance(v, str)}
    # attachment1..N give the order; a gap (a part a proxy dropped) leaves no hole in the index.
    numbered: list[tuple[int, str, str | None, str | None, bytes | memoryview]] = []
    for name, part in form.files.items():
        if match := _ATTACHMENT_FIELD.match(name):
            numbered.append((int(match.group(1)), name, part.filename, part.content_type, part.data))
    for name in form.fields:  # by name: a field's bytes are cut from the body only when read
        if (match := _ATTACHMENT_FIELD.match(name)) and name not in form.files:  # a file part without a filename
            numbered.append((int(match.group(1)), name, None, None, form.fields[name]))
    numbered.sort(key=lambda entry: entry[0])
    attachments = []
    for position, (_, name, part_filename, part_type, data) in enumerate(numbered, start=1):
        details = info.get(name)
        details = details if isinstance(details, dict) else {}
        filename = None
        for candidate in (details.get("filename"), details.get("name"), part_filename):
            if isinstance(candidate, str):
                filename = headers.clean_filename(headers.decode_words(candidate))
                if filename:
                    break
        content_type = details.get("type")
        if not isinstance(content_type, str) or not content_type.strip():
            content_type = part_type
        content_id = _content_id(details.get("content-id")) or _content_id(cid_of.get(name))
        attachments.append(
            Attachment(
                index=position,
                filename=filename,
                content_type=_media_type(content_type),
                content_id=content_id,
                disposition="inline" if content_id else "attachment",
                data=data,
            )
        )
    return attachments


# ---------------------------------------------------------------------------------------------
# Raw mode
#
# The message is read with policy.compat32, not policy.default, on purpose. compat32 keeps
# every header value raw (8-bit bytes as surrogate escapes), so that headers.py decodes them
# with our charset table: WHATWG labels, CP932 for Shift_JIS and ISO-2022-JP, a hint for
# unlabelled 8-bit bytes. policy.default decodes headers itself with Python's strict
# codecs (no CP932 or WHATWG aliasing: ① and ㈱ in an ISO-2022-JP subject are lost), turns
# 8-bit bytes into U+FFFD, and its header parser has raised on malformed headers in several
# Python releases. What policy.default does better for bodies is done here by hand:
# transfer encodings as they occur in the wild (any case, trailing blanks and comments,
# 8bit, binary, broken base64, x-uuencode), the charset from the Content-Type (none means
# us-ascii, which charsets.decode reads as UTF-8 first, windows-1252 else), and the
# original bytes of a forwarded message rather than a re-serialization.


def _raw(form: Form) -> InboundMail:
    # The message is read where it lies in the request body: never copied whole.
    span = form.span("email")
    if span is None:
        return _message(bytes(form.files["email"].data), mode="raw", common=_common(form))
    return _message(*span, mode="raw", common=_common(form))


_NO_FIELDS: dict[str, Any] = {
    "envelope": None, "spf": None, "dkim": None, "spam_score": None, "spam_report": None, "sender_ip": None,
}


def raw_mail(source: bytes, mode: str = "raw") -> InboundMail:
    """A whole MIME message (SendGrid's ``email`` field, or any other ingress's) → InboundMail.

    The fields only SendGrid's form carries (envelope, SPF, DKIM, spam score and report,
    sender IP) are None. Raises PayloadTooLargeError for a hostile nesting, nothing else.
    """
    return _scrubbed(_message(bytes(source), mode=mode, common=_NO_FIELDS))


def _message(
    source: bytes, start: int = 0, end: int | None = None, *, mode: str, common: dict[str, Any]
) -> InboundMail:
    """The message at ``source[start:end]``."""
    end = len(source) if end is None else end
    try:
        message = mimetree.parse(source, start, end)
    except RecursionError:
        # The stdlib parser recurses once per nesting level; about a thousand
        # levels exhaust the stack, and nothing legitimate nests so deep.
        raise PayloadTooLargeError("the message nests too deep") from None
    leaves = _leaves(message)
    # Each part's charset label, read once: the email package parses the whole
    # Content-Type for every get_content_charset().
    text_parts = [part for part, _, content_type in leaves if content_type.startswith("text/")]
    labels: dict[int, str | None] = {}
    for part in (message, *text_parts):
        if id(part) not in labels:  # a one-part message is its own text part
            labels[id(part)] = _charset(part)
    # Raw 8-bit header bytes are read in the charset the sender wrote the message in.
    hint = _hint(labels[id(message)], *(labels[id(part)] for part in text_parts))
    raw_pairs = [(name, headers.header_text(value, hint)) for name, value in message.raw_items()]
    pairs = [(name, headers.decode_words(value).strip(" \t\r\n")) for name, value in raw_pairs]
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    for part, path, content_type in leaves:
        disposition = _safe(part.get_content_disposition, None)
        filename = headers.attachment_filename(
            _part_header(part, "Content-Disposition", hint), _part_header(part, "Content-Type", hint)
        )
        if content_type in ("text/plain", "text/html") and disposition != "attachment" and filename is None:
            data = bytes(_payload(part))
            label = labels[id(part)]
            if content_type == "text/plain":
                texts.append(charsets.decode(data, label))
            else:
                htmls.append(_html(data, label))
            continue
        content_id = _content_id(_part_header(part, "Content-ID", hint))
        inline = disposition == "inline" or (disposition is None and content_id is not None)
        attachments.append(
            Attachment(
                index=len(attachments) + 1,
                filename=filename,
                content_type=_media_type(content_type),
                content_id=content_id,
                disposition="inline" if inline else "attachment",
                data=(
                    _nested_message(part, path, lambda: source[start:end]) if content_type.startswith("message/")
                    else _payload(part)
                ),
            )
        )
    # Each name lower-cased once: a mail has dozens of headers (Received, DKIM, ARC …).
    where: dict[str, list[int]] = {}
    for position, (name, _) in enumerate(raw_pairs):
        where.setdefault(name.lower(), []).append(position)

    def first(found: list[tuple[str, str]], name: str) -> str | None:
        positions = where.get(name)
        return found[positions[0]][1] if positions else None

    def every(name: str) -> str | None:  # two To: lines are one list of recipients
        positions = where.get(name)
        return ", ".join(raw_pairs[i][1] for i in positions) if positions else None

    return InboundMail(
        mode=mode,
        message_id=headers.parse_message_id(first(pairs, "message-id")),
        date=headers.parse_date(first(pairs, "date")),
        subject=first(pairs, "subject"),
        sender=_first_address(_addresses(first(raw_pairs, "from"))),
        to=_addresses(every("to")),
        cc=_addresses(every("cc")),
        reply_to=_addresses(first(raw_pairs, "reply-to")),
        text=_joined(texts),
        html=_joined(htmls),
        headers=pairs,
        attachments=attachments,
        **common,
    )


def _joined(parts: list[str]) -> str | None:
    """Several body parts of one kind (Apple Mail writes text, image, text) in order, each on its own lines."""
    if not parts:
        return None
    out = [parts[0]]
    for part in parts[1:]:
        if out[-1] and not out[-1].endswith(("\n", "\r")):
            out.append("\n")
        out.append(part)
    return "".join(out)


def _charset(part: Message) -> str | None:
    return _safe(part.get_content_charset, None)


def _part_header(part: Message, name: str, hint: str | None) -> str | None:
    """A part's header as text with its 8-bit bytes decoded; the email package's own accessors turn them into U+FFFD."""
    wanted = name.lower()
    for key, value in part.raw_items():
        if key.lower() == wanted:
            return headers.header_text(value, hint)
    return None


_Path = tuple[tuple[Message, int], ...]


def _leaves(message: Message) -> list[tuple[Message, _Path, str]]:
    """Every non-multipart part in order, with its path (each multipart above it and its index there) and its type.

    A forwarded ``message/rfc822`` is one leaf, not descended into. Iterative, with bounds
    on depth and count, so that a hostile nesting costs neither the stack nor unbounded time.
    """
    leaves: list[tuple[Message, _Path, str]] = []
    stack: list[tuple[Message, _Path]] = [(message, ())]
    while stack:
        part, path = stack.pop()
        # Read once here: the email package scans every header for each get_content_type().
        content_type = _safe(part.get_content_type, "application/octet-stream")
        if content_type.startswith("multipart/") and part.is_multipart():
            if len(path) >= MAX_MIME_DEPTH:
                raise PayloadTooLargeError(f"the message nests more than {MAX_MIME_DEPTH} multiparts deep")
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(
                    (child, (*path, (part, index)))
                    for index, child in reversed(list(enumerate(children)))
                    if isinstance(child, Message)
                )
            continue
        leaves.append((part, path, content_type))
        if len(leaves) > MAX_MIME_PARTS:
            raise PayloadTooLargeError(f"the message has more than {MAX_MIME_PARTS} parts")
    return leaves


# -- transfer encodings ------------------------------------------------------------------------

_BASE64_WHOLE = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/=]*")
_PADDING = re.compile(rb"=+")
_BLANKS = b" \t\r\n\x0b\x0c"
_UU_BEGIN = re.compile(rb"begin(?:\s|$)", re.IGNORECASE)


def _transfer_encoding(part: Message) -> str:
    value = _part_header(part, "Content-Transfer-Encoding", None) or ""
    value = re.sub(r"\([^()]*\)", " ", value)  # RFC 822 comments: "base64 (by Foo Mailer)"
    words = value.replace('"', " ").split()
    return words[0].lower() if words else ""


def _base64_chunks(data: bytes) -> bytes:
    # The usual body, one run padded only at its end, in one C call: a quarter
    # of the time of the chunk-by-chunk path below (bench/).
    stripped = data.rstrip()
    if stripped.find(b"=", 0, max(len(stripped) - 2, 0)) < 0:
        try:
            return binascii.a2b_base64(stripped)
        except binascii.Error:
            pass  # missing or stray padding: the careful path below
    # Padding in the middle: encoders that wrote each chunk on its own. A trailing single
    # character makes no byte and is dropped; missing padding is added.
    out = []
    for chunk in _PADDING.split(data):
        chunk = chunk[: len(chunk) - len(chunk) % 4] if len(chunk) % 4 == 1 else chunk
        if chunk:
            out.append(binascii.a2b_base64(chunk + b"=" * (-len(chunk) % 4)))
    return b"".join(out)


# Encoded text read per step of _base64_in_place: small enough to stay in the CPU's cache.
_BASE64_STEP = 64 * 1024


def _base64_in_place(data: Buffer) -> bytearray | None:
    """Well-formed base64 (whitespace aside), decoded a step at a time into one buffer; None for anything else.

    The common case, read without a whole-size copy: the careful path below
    first strips the whitespace from all of the text and then decodes it,
    which holds the text twice and the result at once, and checks its shape
    with a regular expression that alone took a tenth of a 4 MB mail's time
    (bench/). Strict mode refuses exactly what that check and the decoder
    would treat specially (a character outside the alphabet, padding before
    the end, a length that is no multiple of four), so whatever it accepts
    decodes to the same bytes as the careful path.
    """
    view = memoryview(data)
    out = bytearray(len(view) // 4 * 3 + 3)
    written = 0
    carry = b""
    padded = False
    for start in range(0, len(view), _BASE64_STEP):
        text = view[start : start + _BASE64_STEP].tobytes().translate(None, _BLANKS)
        if carry:
            text = carry + text
        if not text:
            continue
        if padded:
            return None  # text after the padding
        usable = len(text) - len(text) % 4
        carry = text[usable:]
        if usable:
            try:
                piece = binascii.a2b_base64(text[:usable] if carry else text, strict_mode=True)
            except binascii.Error:
                return None
            out[written : written + len(piece)] = piece
            written += len(piece)
            padded = text[usable - 1] == 0x3D  # "="
    if carry:
        return None  # missing padding: the careful path adds it
    del out[written:]
    return out


def _base64(data: Buffer) -> Buffer:
    """Lenient base64: the stdlib returns the encoded text itself for a truncated body, and decodes list footers."""
    fast = _base64_in_place(data)
    return fast if fast is not None else _base64_careful(bytes(data))


def _base64_careful(data: bytes) -> bytes:
    compact = data.translate(None, _BLANKS)
    if _BASE64_WHOLE.fullmatch(compact):
        return _base64_chunks(compact)
    # Something that is not base64 follows the data (a mailing list's footer, as a rule):
    # decode the lines up to it.
    lines = []
    for line in data.splitlines():
        line = line.strip(_BLANKS)
        if not _BASE64_LINE.fullmatch(line):
            break
        lines.append(line)
    if not any(lines):
        return data  # not base64 at all, whatever the header says: keep what was sent
    return _base64_chunks(b"".join(lines))


def _uudecode(data: bytes) -> bytes:
    lines = iter(data.splitlines())
    for line in lines:
        if _UU_BEGIN.match(line.strip()):
            break
    else:
        return data
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped == b"end":
            break
        if not stripped or stripped == b"`":
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            # Trailing garbage from broken encoders, as the stdlib's own workaround.
            try:
                out.append(binascii.a2b_uu(line[: (((line[0] - 32) & 63) * 4 + 5) // 3]))
            except binascii.Error:
                continue
    return b"".join(out)


def _decode_transfer(data: Buffer, encoding: str) -> Buffer:
    try:
        if encoding == "base64":
            return _base64(data)
        if encoding in ("quoted-printable", "quotedprintable"):
            return binascii.a2b_qp(data)
        if encoding in ("x-uuencode", "uuencode", "uue", "x-uue"):
            return _uudecode(bytes(data))
    except (binascii.Error, ValueError):
        return data
    return data  # 7bit, 8bit, binary, or a name we do not know: the bytes as sent


def _raw_payload(part: Message) -> Buffer:
    # The payload as the parser stored it: the stdlib's parser a str holding the original
    # bytes as ASCII and surrogate escapes (get_payload() would decode it lossily first),
    # mimetree a view of the source.
    payload = vars(part).get("_payload")
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    if isinstance(payload, bytes | memoryview):
        return payload
    return b""


def _payload(part: Message) -> Buffer:
    return _decode_transfer(_raw_payload(part), _transfer_encoding(part))


# -- forwarded messages ------------------------------------------------------------------------

_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")  # the email package's headerRE
_LINE_END = re.compile(rb"\r\n|\r|\n")


def _body_start(data: bytes) -> int:
    """Where the body begins after a header block, by the email package's own rules."""
    pos = 0
    while pos < len(data):
        end = _LINE_END.search(data, pos)
        line_end = end.end() if end else len(data)
        if end is not None and end.start() == pos:
            return line_end  # the empty line
        if not _HEADER_LINE.match(data, pos):
            return pos  # a line that is no header starts the body
        pos = line_end
    return len(data)


def _nth_part(body: bytes, boundary: str, index: int) -> bytes | None:
    """The bytes of part `index` of a multipart body, as the email package splits it."""
    escaped = re.escape(boundary.encode("utf-8", "surrogateescape"))
    delimiter = re.compile(rb"(?:\A|(?<=[\r\n]))--" + escaped + rb"(--)?[ \t]*(?:\r\n|\r|\n|\Z)")
    found = -1
    start: int | None = None
    for match in delimiter.finditer(body):
        if start is not None:
            end = match.start()
            end -= 2 if body[end - 2 : end] == b"\r\n" else 1 if end > start else 0
            return body[start : max(start, end)]
        if match.group(1):
            return None  # the close delimiter
        found += 1
        if found == index:
            start = match.end()
    return body[start:] if start is not None else None


def _original_body(source: bytes, path: _Path) -> bytes | None:
    data = source[_body_start(source) :]
    for multipart, index in path:
        boundary = _safe(multipart.get_boundary, None)
        if not boundary:
            return None
        part = _nth_part(data, boundary, index)
        if part is None:
            return None
        data = part[_body_start(part) :]
    return data


def _same_headers(data: bytes, inner: Message) -> bool:
    try:
        parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(data)
        return list(parsed.raw_items()) == list(inner.raw_items())
    except Exception:
        return False


def _nested_message(part: Message, path: _Path, message: Callable[[], bytes]) -> Buffer:
    """A forwarded message (message/rfc822, message/global, …) as the bytes it had in the mail.

    compat32's as_bytes() re-folds long headers and rewrites line ends, so the bytes are
    cut from the original instead: where mimetree parsed it, the bytes it parsed; else the
    email package's own split of ``message()``, checked against what it parsed. A
    forwarded message sent in base64 or quoted-printable is decoded.
    """
    encoding = _transfer_encoding(part)
    encoded = encoding in ("base64", "quoted-printable", "quotedprintable", "x-uuencode", "uuencode", "uue", "x-uue")
    cut: memoryview | None = vars(part).get(mimetree.ORIGINAL)
    if cut is not None:  # the very bytes the tree was read from
        return bytes(_decode_transfer(cut, encoding)) if encoded else cut
    original = _original_body(message(), path)
    if original is not None:
        if encoded:
            return bytes(_decode_transfer(original, encoding))
        inner = part.get_payload(0) if part.is_multipart() else None
        if not isinstance(inner, Message) or _same_headers(original, inner):
            return original
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return _safe(payload[0].as_bytes, b"")
    return bytes(_payload(part))


# ---------------------------------------------------------------------------------------------
# The last line of defence for the store


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_scrub(item) for item in value)
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    return value


def _scrubbed_attachment(attachment: Attachment) -> Attachment:
    texts = (attachment.filename, attachment.content_type, attachment.content_id)
    if all(text is None or _text(text) == text for text in texts):
        return attachment
    return Attachment(
        index=attachment.index,
        filename=_scrub(attachment.filename),
        content_type=_media_type(attachment.content_type),
        content_id=_scrub(attachment.content_id),
        disposition=attachment.disposition,
        data=attachment.data,
    )


# Built once (json.dumps builds an encoder per call for any non-default argument); a document has no cycles.
_JSON_PROBE = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def _storable(mail: InboundMail) -> bool:
    """True when every string of the mail's document encodes as UTF-8, that is, holds no lone surrogate.

    The document is every string the store keeps. One C-level encoding of it
    costs a fifth of walking it string by string (bench/: the walk was a tenth
    of a small mail's time), and nearly every mail passes. The bodies are the
    largest strings, and json.dumps(ensure_ascii=False) is slow on them: they
    are checked by encoding them alone.
    """
    document = mail.to_dict()
    bodies = (document.pop("text"), document.pop("html"), document.pop("spam_report"))
    try:
        _JSON_PROBE.encode(document).encode("utf-8")
        for body in bodies:
            if body is not None:
                body.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _scrubbed(mail: InboundMail) -> InboundMail:
    """Every string of the mail without lone surrogates, whichever path it came by."""
    if _storable(mail):
        return mail
    changes: dict[str, Any] = {
        item.name: _scrub(getattr(mail, item.name))
        for item in dataclasses.fields(mail)
        if item.name not in ("envelope", "attachments")
    }
    if mail.envelope is not None:
        changes["envelope"] = Envelope(_scrub(mail.envelope.sender), _scrub(mail.envelope.recipients))
    changes["attachments"] = [_scrubbed_attachment(a) for a in mail.attachments]
    return dataclasses.replace(mail, **changes)
