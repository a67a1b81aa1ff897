"""The message a stored SendGrid post carried, in RFC 5322 form, for handlers and ``GET /mails/{id}/eml``.

"Send Raw" posted the message itself in ``email``: it is handed back byte for
byte. Parsed mode posted its parts, so the message is rebuilt: the header
block SendGrid gave, byte for byte, less the headers that described the
original MIME structure; then the text and HTML as stored (UTF-8), and every
attachment with its stored name, type, Content-ID and bytes. What parsed mode
never posted cannot come back: the original MIME tree and its boundaries,
each part's own headers and transfer encoding, the original charsets, and any
part SendGrid dropped.
"""

from __future__ import annotations

import re
from email import encoders
from email.generator import BytesGenerator
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from io import BytesIO
from typing import Any

from chalicelib.errors import MalformedMailError
from chalicelib.ingress import form as forms
from chalicelib.ingress.sendgrid.parsed import numbered_parts
from chalicelib.mime import headers

# They described the original's body, which is rebuilt with its own.
_BODY_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version", "content-length"})
_LINE_END = re.compile(rb"\r\n|\r|\n")
# A media type as a MIME header may carry it: anything else goes as application/octet-stream.
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_CONTENT_ID = re.compile(r"[!-;=?-~]{1,998}")  # printable ASCII but < and >: nothing that could end the header
# The stdlib's MIME classes build compat32 messages; RFC 5322 ends lines in CRLF.
_CRLF = compat32.clone(linesep="\r\n")
# Each text subtype and the document's field that holds it, in the order a multipart/alternative wants.
_FIELDS = (("plain", "text"), ("html", "html"))


def message_of(request: bytes, content_type: str, document: dict[str, Any]) -> bytes:
    """The message of a stored post: the ``email`` field in raw mode, else rebuilt from the fields and ``document``."""
    form = forms.parse(request, content_type)
    if "email" in form.files:
        return bytes(form.files["email"].data)
    if "email" in form.fields:
        return form.fields["email"]
    if not any(name in form.fields for name in ("headers", "text", "html")):
        raise MalformedMailError("the stored post carries no message")
    body = _body(form, document)
    # Boundaries of the mail's id: the same mail rebuilds to the same bytes. "=_" never occurs in
    # base64, the one encoding of every part, nor at the start of a header line.
    for depth, part in enumerate(part for part in body.walk() if part.is_multipart()):
        part.set_boundary(f"=_{document['id']}_{depth}")
    return _header_lines(form.fields.get("headers", b"")) + _generated(body)


def _header_lines(block: bytes) -> bytes:
    lines = [
        name.encode("ascii", "replace") + b":" + _LINE_END.sub(b"\r\n", value) + b"\r\n"
        for name, value in headers.split_header_block(block)
        if name.lower() not in _BODY_HEADERS
    ]
    return b"".join(lines)


def _body(form: forms.Form, document: dict[str, Any]) -> Message:
    texts = [_text(document[field], kind) for kind, field in _FIELDS if document.get(field) is not None]
    body = texts[0] if len(texts) == 1 else _multipart("alternative", texts or [_text("", "plain")])
    data = {position: part[3] for position, part in enumerate(numbered_parts(form), start=1)}
    inline: list[Message] = []
    attached: list[Message] = []
    for entry in document["attachments"]:
        part = _attachment(entry, bytes(data.get(entry["index"], b"")))
        (inline if entry["content_id"] and document.get("html") is not None else attached).append(part)
    if inline:
        body = _multipart("related", [body, *inline])
    if attached:
        body = _multipart("mixed", [body, *attached])
    body["MIME-Version"] = "1.0"
    return body



def _text(text: str, subtype: str) -> Message:
    part = MIMEText(text, subtype, "utf-8")
    del part["MIME-Version"]  # the message's own, once, at the top
    return part


def _multipart(subtype: str, parts: list[Message]) -> Message:
    multipart = MIMEMultipart(subtype)
    del multipart["MIME-Version"]
    for part in parts:
        multipart.attach(part)
    return multipart


def _attachment(entry: dict[str, Any], data: bytes) -> Message:
    media_type = entry["content_type"] if _MEDIA_TYPE.fullmatch(entry["content_type"]) else "application/octet-stream"
    main, sub = media_type.split("/", 1)
    part = MIMEBase(main, sub)
    del part["MIME-Version"]
    part.set_payload(data)
    # Base64 whatever the type: the bytes come back exactly, with no line ending rewritten.
    encoders.encode_base64(part)
    disposition = "inline" if entry["disposition"] == "inline" else "attachment"
    if entry["filename"]:
        part.add_header("Content-Disposition", disposition, filename=("utf-8", "", entry["filename"]))
    else:
        part.add_header("Content-Disposition", disposition)
    if entry["content_id"] and _CONTENT_ID.fullmatch(entry["content_id"]):
        part["Content-ID"] = f"<{entry['content_id']}>"
    return part


def _generated(message: Message) -> bytes:
    out = BytesIO()
    BytesGenerator(out, policy=_CRLF).flatten(message)
    return out.getvalue()
