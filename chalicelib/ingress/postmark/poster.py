"""A message posted the way Postmark's inbound webhook posts it, for tests and ``scripts/send_mail.py``.

The fields of Postmark's documented example: ``From``/``FromFull``,
``To``/``ToFull``, ``Cc``/``CcFull``, ``OriginalRecipient``, ``Subject``,
``Date``, Postmark's own ``MessageID``, ``TextBody``, ``HtmlBody``,
``Headers`` (every header but those given as fields) and ``Attachments``
(base64 ``Content``), and ``RawEmail`` when asked for. Never imported by a
deployed function.
"""

from __future__ import annotations

import base64
import json
import uuid
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any

# Given as fields of their own, not in Headers.
_FIELDS = frozenset({"from", "to", "cc", "bcc", "subject", "date", "reply-to"})


def _people(message: Message, name: str) -> list[dict[str, str]]:
    values = [str(value) for value in message.get_all(name, [])]
    return [{"Email": address, "Name": display, "MailboxHash": ""} for display, address in getaddresses(values)]


def _leaves(message: Message) -> list[Message]:
    if message.is_multipart():
        return [leaf for part in message.get_payload() if isinstance(part, Message) for leaf in _leaves(part)]
    return [message]


def postmark_json(source: bytes, raw: bool = False, envelope_to: list[str] | None = None) -> dict[str, Any]:
    message = BytesParser(policy=policy.default).parsebytes(source)
    original = BytesParser(policy=policy.compat32).parsebytes(source, headersonly=True)
    bodies: dict[str, list[str]] = {"text/plain": [], "text/html": []}
    attachments = []
    for part in _leaves(message):
        kind = part.get_content_type()
        if kind in bodies and part.get_filename() is None and part.get_content_disposition() != "attachment":
            bodies[kind].append(part.get_content() if isinstance(part, EmailMessage) else "")
            continue
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        entry = {"Name": part.get_filename() or "", "Content": base64.b64encode(data).decode("ascii"),
                 "ContentType": kind, "ContentLength": len(data)}
        if part.get("Content-ID"):
            entry["ContentID"] = str(part["Content-ID"]).strip().strip("<>")
        attachments.append(entry)
    to = _people(message, "To")
    posted: dict[str, Any] = {
        "From": str(message.get("From", "")),
        "FromName": next(iter(_people(message, "From")), {}).get("Name", ""),
        "FromFull": next(iter(_people(message, "From")), {"Email": "", "Name": "", "MailboxHash": ""}),
        "To": str(message.get("To", "")),
        "ToFull": to,
        "Cc": str(message.get("Cc", "")),
        "CcFull": _people(message, "Cc"),
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": (envelope_to or [entry["Email"] for entry in to] or [""])[0],
        "ReplyTo": str(message.get("Reply-To", "")),
        "Subject": str(message.get("Subject", "")),
        "MessageID": str(uuid.uuid4()),
        "MessageStream": "inbound",
        "Date": str(original.get("Date", "")),
        "MailboxHash": "",
        "TextBody": "\n".join(bodies["text/plain"]),
        "HtmlBody": "\n".join(bodies["text/html"]),
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": name, "Value": " ".join(str(value).split())}
            for name, value in original.items()
            if name.lower() not in _FIELDS
        ]
        + [{"Name": "X-Spam-Status", "Value": "No"}, {"Name": "X-Spam-Score", "Value": "-0.1"},
           {"Name": "Received-SPF", "Value": "Pass (sender SPF authorized) identity=mailfrom"}],
        "Attachments": attachments,
    }
    if raw:
        posted["RawEmail"] = source.decode("utf-8", "replace")
    return posted


def build_body(source: bytes, raw: bool = False, envelope_to: list[str] | None = None) -> tuple[bytes, str]:
    return json.dumps(postmark_json(source, raw, envelope_to)).encode("utf-8"), "application/json"
