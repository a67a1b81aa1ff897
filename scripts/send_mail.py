"""Post a real .eml file to the webhook the way SendGrid's Inbound Parse would.

Parsed mode (the default) sends the fields SendGrid sends: the raw header
block, ``text`` and ``html`` in their own charsets named in ``charsets``, the
addresses, ``envelope``, ``attachment-info``, ``content-ids`` and the
attachments as ``attachmentN`` file parts. ``--raw`` sends the whole message in
``email``, as "Send Raw" does. Use it to try a deployment without SendGrid.
"""

from __future__ import annotations

import argparse
import json
import sys
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import requests
from requests_toolbelt import MultipartEncoder


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


def _addresses(message: Message, name: str) -> list[str]:
    values = [str(v) for v in message.get_all(name, [])]
    return [address for _, address in getaddresses(values) if address]


def _leaves(message: Message) -> list[Message]:
    if message.get_content_maintype() == "multipart" and message.is_multipart():
        found: list[Message] = []
        for part in message.get_payload():
            if isinstance(part, Message):
                found.extend(_leaves(part))
        return found
    return [message]


def sendgrid_fields(
    source: bytes, raw: bool = False, envelope_to: list[str] | None = None
) -> list[tuple[str, Any]]:
    """The form fields, in SendGrid's order, for one message."""
    message = BytesParser(policy=policy.compat32).parsebytes(source)
    recipients = envelope_to or _addresses(message, "To") + _addresses(message, "Cc")
    senders = _addresses(message, "From")
    envelope = {"to": recipients, "from": senders[0] if senders else ""}
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
        ("sender_ip", "192.0.2.1"),
        ("spam_score", "0.1"),
    ]
    if senders and "@" in senders[0]:
        fields.append(("dkim", "{@" + senders[0].split("@", 1)[1] + " : pass}"))
    if raw:
        fields.append(("email", source))
        fields.append(("charsets", json.dumps(charsets)))
        return fields

    fields.insert(0, ("headers", _header_block(source)))
    texts: list[bytes] = []
    htmls: list[bytes] = []
    attachments: list[Message] = []
    for part in _leaves(message):
        kind = part.get_content_type()
        if part.get_filename() is None and part.get_content_disposition() != "attachment" and kind in (
            "text/plain",
            "text/html",
        ):
            payload = part.get_payload(decode=True)
            (texts if kind == "text/plain" else htmls).append(payload if isinstance(payload, bytes) else b"")
            charsets["text" if kind == "text/plain" else "html"] = part.get_content_charset() or "us-ascii"
        else:
            attachments.append(part)
    if texts:
        fields.append(("text", b"\n".join(texts)))
    if htmls:
        fields.append(("html", b"\n".join(htmls)))
    info: dict[str, dict[str, str]] = {}
    content_ids: dict[str, str] = {}
    for index, part in enumerate(attachments, start=1):
        name = f"attachment{index}"
        filename = part.get_filename() or f"{name}.bin"
        entry = {"filename": filename, "name": filename, "type": part.get_content_type()}
        cid = part.get("Content-ID")
        if cid:
            entry["content-id"] = str(cid).strip().strip("<>")
            content_ids[entry["content-id"]] = name
        info[name] = entry
        payload = part.get_payload(decode=True)
        fields.append((name, (filename, payload if isinstance(payload, bytes) else b"", part.get_content_type())))
    fields.append(("attachments", str(len(attachments))))
    if attachments:
        fields.append(("attachment-info", json.dumps(info)))
    if content_ids:
        fields.append(("content-ids", json.dumps(content_ids)))
    fields.append(("charsets", json.dumps(charsets)))
    return fields


def build_body(
    source: bytes, raw: bool = False, envelope_to: list[str] | None = None
) -> tuple[bytes, str]:
    """The multipart body and its Content-Type, built with requests-toolbelt."""
    encoder = MultipartEncoder(fields=sendgrid_fields(source, raw, envelope_to))
    return encoder.to_string(), encoder.content_type


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eml", type=Path, help="the message, as an .eml file")
    parser.add_argument("--url", required=True, help="the webhook URL, with ?MailKey=…&MailSecret=… if used")
    parser.add_argument("--raw", action="store_true", help='post as SendGrid\'s "Send Raw" mode')
    parser.add_argument("--envelope-to", action="append", help="envelope recipient (repeatable)")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)

    body, content_type = build_body(args.eml.read_bytes(), args.raw, args.envelope_to)
    response = requests.post(
        args.url, data=body, headers={"Content-Type": content_type}, timeout=args.timeout
    )
    print(response.status_code, response.text)
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
