"""The compose form's JSON as an RFC 5322 message, and who it is addressed to.

The form is what the console posts to ``POST /console/compose``: ``from``,
``to`` (a list), ``subject``, ``text``, ``html`` and ``attachments``
(``filename``, ``content_type``, ``data`` in base64). Anything else, or a field
of the wrong type, is a 400: a hand-made request gets a clear answer.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from typing import Any

from chalicelib.errors import BadRequestError

_FIELDS = {"from", "to", "subject", "text", "html", "attachments"}
_ATTACHMENT_FIELDS = {"filename", "content_type", "data"}
MAX_RECIPIENTS = 50


@dataclass(frozen=True)
class Composed:
    message: bytes
    recipients: list[str]


def compose(form: Any) -> Composed:
    if not isinstance(form, dict) or not set(form) <= _FIELDS:
        raise BadRequestError(f"the form is a JSON object of {', '.join(sorted(_FIELDS))}")
    sender = _text(form, "from")
    recipients = form.get("to")
    if not isinstance(recipients, list) or not all(isinstance(r, str) and _address(r) for r in recipients):
        raise BadRequestError("to must be a list of addresses")
    if not recipients or len(recipients) > MAX_RECIPIENTS:
        raise BadRequestError(f"to must name 1 to {MAX_RECIPIENTS} addresses")
    if not _address(sender):
        raise BadRequestError("from must be an address")
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = _text(form, "subject")
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="console.invalid")
    text, html = _text(form, "text"), _text(form, "html")
    message.set_content(text or ("" if html else "\n"))
    if html:
        message.add_alternative(html, subtype="html")
    for attachment in _attachments(form.get("attachments", [])):
        maintype, _, subtype = attachment[1].partition("/")
        message.add_attachment(attachment[2], maintype=maintype, subtype=subtype, filename=attachment[0])
    return Composed(message.as_bytes(), [r.strip().lower() for r in recipients])


def _text(form: dict[str, Any], name: str) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        raise BadRequestError(f"{name} must be text")
    if name in ("from", "subject") and ("\r" in value or "\n" in value):
        raise BadRequestError(f"{name} must be one line")
    return value


def _address(value: str) -> bool:
    local, at, domain = value.strip().rpartition("@")
    return bool(at and local and domain) and not any(c in value for c in "\r\n,<>\"")


def _attachments(entries: Any) -> list[tuple[str, str, bytes]]:
    if not isinstance(entries, list):
        raise BadRequestError("attachments must be a list")
    found = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != _ATTACHMENT_FIELDS:
            raise BadRequestError("an attachment is {filename, content_type, data}")
        name, kind, data = entry["filename"], entry["content_type"], entry["data"]
        if not all(isinstance(value, str) for value in (name, kind, data)) or kind.count("/") != 1:
            raise BadRequestError("an attachment's filename, content_type and data are text, its type type/subtype")
        try:
            found.append((name, kind, base64.b64decode(data, validate=True)))
        except (binascii.Error, ValueError):
            raise BadRequestError("an attachment's data must be base64") from None
    return found
