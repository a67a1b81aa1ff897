"""A message posted the way SendGrid's Inbound Parse posts it, for ``chalicelib.testing`` and ``scripts/send_mail.py``.

Parsed mode (the default) sends the fields SendGrid sends: the raw header
block, ``text`` and ``html`` in their own charsets named in ``charsets`` (as
UTF-8 when several parts of one kind differ), the addresses, ``envelope``,
``attachment-info``, ``content-ids`` and the attachments as ``attachmentN``
file parts (a forwarded message as its whole bytes). Raw mode sends the whole
message in ``email``, as "Send Raw" does. The envelope is the caller's when it
has one (an SMTP session's ``MAIL FROM`` and ``RCPT TO``: scripts/smtp_bridge.py),
else made from the From, To and Cc headers. A deployed function imports it only
for the console's compose form (``conductor.py``, local and dev stages), which
needs ``sendgrid_fields`` alone: requests-toolbelt, a development package, is
imported by ``build_body`` when called.
"""

from __future__ import annotations

import json
import re
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any


def _header_block(source: bytes) -> bytes:
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = source.find(separator)
        if index >= 0:
            return source[:index]
    return source


def _decoded_header(value: str | None) -> tuple[bytes, str]:
    """A header as SendGrid posts it: RFC 2047 words decoded, in their own charset when there is one."""
    if value is None:
        return b"", "UTF-8"
    words = decode_header(value)
    labels = {charset for _, charset in words if charset}
    if len(labels) == 1:
        label = labels.pop()
        joined = b"".join(
            chunk if isinstance(chunk, bytes) else chunk.encode("ascii", "replace") for chunk, _ in words
        )
        return joined, label.upper()
    text = "".join(
        chunk.decode(charset or "ascii", "replace") if isinstance(chunk, bytes) else chunk
        for chunk, charset in words
    )
    return text.encode("utf-8"), "UTF-8"


# Raw ISO-2022-JP in a display name (old Japanese mailers) would confuse getaddresses.
_RAW_JIS = re.compile(r"\x1b\$[@B][^\x1b]*(?:\x1b\([BJ])?")
# What Windows and browsers mean by these labels, where Python's codec of the name is narrower.
_WINDOWS_CODECS = {"shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "ks_c_5601-1987": "cp949",
                   "euc-kr": "cp949", "gb2312": "gbk", "iso-8859-1": "cp1252", "us-ascii": "cp1252"}


def _addresses(message: Message, name: str) -> list[str]:
    values = [_RAW_JIS.sub("x", str(v)) for v in message.get_all(name, [])]
    return [address for _, address in getaddresses(values) if address]


def _decode(data: bytes, charset: str | None) -> str:
    label = (charset or "us-ascii").strip().lower()
    try:
        return data.decode(_WINDOWS_CODECS.get(label, label), "replace")
    except LookupError:
        return data.decode("cp1252", "replace")


def _filename(part: Message, charset: str | None) -> str | None:
    """The part's file name; raw 8-bit bytes in it read as UTF-8, else in the message's charset, as mail clients do.

    (compat32's get_filename() turns such bytes into U+FFFD.)
    """
    name = part.get_filename()
    if name is None or "\ufffd" not in name:
        return name
    for key, value in part.raw_items():
        if key.lower() not in ("content-disposition", "content-type") or not isinstance(value, str):
            continue
        raw = value.encode("ascii", "surrogateescape")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = _decode(raw, charset)
        probe = Message()
        probe[key] = text
        found = probe.get_filename()
        if found:
            return found
    return name


def _attachment_bytes(part: Message) -> bytes:
    if part.get_content_maintype() == "message" and part.is_multipart():
        inner = part.get_payload(0)
        return inner.as_bytes() if isinstance(inner, Message) else b""  # a forwarded message, whole
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _body_field(parts: list[tuple[bytes, str]]) -> tuple[bytes, str]:
    """Several body parts of one kind as one field: in their charset when they share one, else as UTF-8."""
    labels = {label.lower() for _, label in parts}
    if len(labels) == 1:
        return b"\n".join(data for data, _ in parts), parts[0][1]
    return "\n".join(_decode(data, label) for data, label in parts).encode("utf-8"), "UTF-8"


def _leaves(message: Message) -> list[Message]:
    if message.get_content_maintype() == "multipart" and message.is_multipart():
        found: list[Message] = []
        for part in message.get_payload():
            if isinstance(part, Message):
                found.extend(_leaves(part))
        return found
    return [message]


def sendgrid_fields(
    source: bytes, raw: bool = False, envelope_to: list[str] | None = None, *,
    envelope_from: str | None = None, sender_ip: str = "192.0.2.1",
) -> list[tuple[str, Any]]:
    """The form fields, in SendGrid's order, for one message.

    ``envelope_from`` "" is the null sender (``MAIL FROM:<>``, a bounce), kept as it came.
    """
    message = BytesParser(policy=policy.compat32).parsebytes(source)
    recipients = envelope_to or _addresses(message, "To") + _addresses(message, "Cc")
    senders = _addresses(message, "From")
    sender = envelope_from if envelope_from is not None else senders[0] if senders else ""
    envelope = {"to": recipients, "from": sender}
    fields: list[tuple[str, Any]] = []
    charsets: dict[str, str] = {}
    for name, header in (("from", "From"), ("to", "To"), ("cc", "Cc"), ("subject", "Subject")):
        if message.get(header) is None:
            continue
        value, charset = _decoded_header(message.get(header))
        fields.append((name, value))
        charsets[name] = charset
    fields += [
        ("envelope", json.dumps(envelope)),
        ("SPF", "pass"),
        ("sender_ip", sender_ip),
        ("spam_score", "0.1"),
    ]
    if senders and "@" in senders[0]:
        fields.append(("dkim", "{@" + senders[0].split("@", 1)[1] + " : pass}"))
    if raw:
        fields.append(("email", source))
        fields.append(("charsets", json.dumps(charsets)))
        return fields

    fields.insert(0, ("headers", _header_block(source)))
    bodies: dict[str, list[tuple[bytes, str]]] = {"text": [], "html": []}
    attachments: list[Message] = []
    leaves = _leaves(message)
    message_charset = next((p.get_content_charset() for p in leaves if p.get_content_charset()), None)
    for part in leaves:
        kind = part.get_content_type()
        if part.get_filename() is None and part.get_content_disposition() != "attachment" and kind in (
            "text/plain",
            "text/html",
        ):
            payload = part.get_payload(decode=True)
            bodies["text" if kind == "text/plain" else "html"].append(
                (payload if isinstance(payload, bytes) else b"", part.get_content_charset() or "us-ascii")
            )
        else:
            attachments.append(part)
    for field, parts in bodies.items():
        if parts:
            data, charsets[field] = _body_field(parts)
            fields.append((field, data))
    info: dict[str, dict[str, str]] = {}
    content_ids: dict[str, str] = {}
    for index, part in enumerate(attachments, start=1):
        name = f"attachment{index}"
        filename = _filename(part, message_charset) or f"{name}.bin"
        entry = {"filename": filename, "name": filename, "type": part.get_content_type()}
        cid = part.get("Content-ID")
        if cid:
            entry["content-id"] = str(cid).strip().strip("<>")
            content_ids[entry["content-id"]] = name
        info[name] = entry
        fields.append((name, (filename, _attachment_bytes(part), part.get_content_type())))
    fields.append(("attachments", str(len(attachments))))
    if attachments:
        fields.append(("attachment-info", json.dumps(info)))
    if content_ids:
        fields.append(("content-ids", json.dumps(content_ids)))
    fields.append(("charsets", json.dumps(charsets)))
    return fields


def build_body(
    source: bytes, raw: bool = False, envelope_to: list[str] | None = None, *,
    envelope_from: str | None = None, sender_ip: str = "192.0.2.1",
) -> tuple[bytes, str]:
    """The multipart body and its Content-Type, built with requests-toolbelt."""
    from requests_toolbelt import MultipartEncoder  # noqa: PLC0415  # a development package: see the module doc

    fields = sendgrid_fields(source, raw, envelope_to, envelope_from=envelope_from, sender_ip=sender_ip)
    encoder = MultipartEncoder(fields=fields)
    return encoder.to_string(), encoder.content_type

