"""A message posted the way a Mailgun Route's forward() posts it, signed, for tests and ``scripts/send_mail.py``.

Parsed (the default): ``recipient`` and ``sender`` (the envelope), ``from``,
``subject``, ``body-plain``, ``body-html``, ``message-headers`` (JSON, in
order), ``attachment-count``, ``attachment-1`` … as file parts and
``content-id-map``; ``application/x-www-form-urlencoded`` without
attachments, ``multipart/form-data`` with them, as Mailgun does. ``mime``:
the message in ``body-mime``. Both carry ``timestamp``, ``token`` and
``signature``. Never imported by a deployed function.
"""

from __future__ import annotations

import json
import secrets
import time
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any
from urllib.parse import urlencode

from requests_toolbelt import MultipartEncoder

from chalicelib.ingress.mailgun.signature import sign


def signed_fields(key: str, timestamp: int | None = None, token: str | None = None) -> list[tuple[str, str]]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = token or secrets.token_hex(25)
    return [("timestamp", stamp), ("token", token), ("signature", sign(key, stamp, token))]


def _leaves(message: Message) -> list[Message]:
    if message.is_multipart():
        return [leaf for part in message.get_payload() if isinstance(part, Message) for leaf in _leaves(part)]
    return [message]


def mailgun_fields(
    source: bytes, mime: bool = False, envelope_to: list[str] | None = None
) -> tuple[list[tuple[str, Any]], bool]:
    """The fields, and whether they need multipart/form-data (an attachment)."""
    message = BytesParser(policy=policy.default).parsebytes(source)
    original = BytesParser(policy=policy.compat32).parsebytes(source, headersonly=True)
    senders = getaddresses([str(value) for value in message.get_all("From", [])])
    recipients = envelope_to or [a for _, a in getaddresses([str(v) for v in message.get_all("To", [])]) if a]
    fields: list[tuple[str, Any]] = [
        ("recipient", ",".join(recipients)),
        ("sender", senders[0][1] if senders else ""),
        ("from", str(message.get("From", ""))),
        ("subject", str(message.get("Subject", ""))),
    ]
    if mime:
        return [*fields, ("body-mime", source.decode("utf-8", "replace"))], False
    bodies: dict[str, list[str]] = {"text/plain": [], "text/html": []}
    files: list[tuple[str, Any]] = []
    content_ids: dict[str, str] = {}
    for part in _leaves(message):
        kind = part.get_content_type()
        if kind in bodies and part.get_filename() is None and part.get_content_disposition() != "attachment":
            bodies[kind].append(part.get_content() if isinstance(part, EmailMessage) else "")
            continue
        data = part.get_payload(decode=True)
        name = f"attachment-{len(files) + 1}"
        files.append((name, (part.get_filename() or "", data if isinstance(data, bytes) else b"", kind)))
        if part.get("Content-ID"):
            content_ids[str(part["Content-ID"]).strip()] = name
    headers = [[name, " ".join(str(value).split())] for name, value in original.items()]
    fields += [
        ("body-plain", "\n".join(bodies["text/plain"])),
        ("body-html", "\n".join(bodies["text/html"])),
        ("message-headers", json.dumps(headers)),
        ("attachment-count", str(len(files))),
    ]
    if content_ids:
        fields.append(("content-id-map", json.dumps(content_ids)))
    return fields + files, bool(files)


def build_body(
    source: bytes, key: str, mime: bool = False, envelope_to: list[str] | None = None,
    timestamp: int | None = None, token: str | None = None,
) -> tuple[bytes, str]:
    fields, multipart = mailgun_fields(source, mime, envelope_to)
    fields += signed_fields(key, timestamp, token)
    if multipart:
        encoder = MultipartEncoder(fields=fields)
        return encoder.to_string(), encoder.content_type
    return urlencode(fields).encode("ascii"), "application/x-www-form-urlencoded"
