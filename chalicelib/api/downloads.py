"""How a stored object leaves: never as something a browser would run.

Every answer says ``nosniff`` and ``Content-Security-Policy: sandbox``. Only
passive types (raster images, PDF, plain text) keep their type and may be
shown inline; anything else (HTML, SVG, XML, scripts) goes as
``application/octet-stream``, to be saved, both from the API and from the
presigned S3 link (whose response headers S3 sets from the link). The
original of a mail is ``message/rfc822`` when it is a message (SES), else the
request body it was, ``application/octet-stream``; never the poster's own
Content-Type.

The bytes come in the answer when API Gateway can carry them: Lambda answers
at most 6 MB (4.5 MB of bytes once base64), and API Gateway passes bytes
untouched only for the binary types declared on the API. Else a 302 to a
short-lived S3 link.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from chalicelib.storage.reads import MESSAGE_TYPE, MailReads, ObjectRef
from chalicelib.storage.store import MailStore

INLINE_DOWNLOAD_BYTES = 4 * 1024 * 1024
# Shown by a browser without running anything that came with them.
PASSIVE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/avif", "application/pdf", "text/plain"}
)
SAVED_TYPE = "application/octet-stream"
SAFETY_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


@dataclass(frozen=True)
class Download:
    status: int
    headers: dict[str, str]
    body: bytes | str  # "" for a redirect: API Gateway and Chalice's test client take an empty body as text


def attachment(store: MailReads, ref: ObjectRef, entry: dict[str, Any], binary_types: Collection[str]) -> Download:
    """An attachment: its own type and disposition when passive, else saved as bytes."""
    media_type = ref.content_type.split(";", 1)[0].strip().lower()
    passive = media_type in PASSIVE_TYPES
    inline = passive and entry["disposition"] == "inline"
    disposition = content_disposition(entry["filename"], inline, default=f"attachment-{entry['index']}")
    return _serve(store, ref, media_type if passive else SAVED_TYPE, disposition, binary_types)


def original(store: MailReads, ref: ObjectRef, mail_id: str, binary_types: Collection[str]) -> Download:
    """The bytes the mail arrived as, to be saved."""
    message = ref.content_type.split(";", 1)[0].strip().lower() == MESSAGE_TYPE
    name = f"{mail_id}.eml" if message else f"{mail_id}.bin"
    served = MESSAGE_TYPE if message else SAVED_TYPE
    return _serve(store, ref, served, content_disposition(name, False, name), binary_types)


def message(store: MailStore, mail_id: str, data: bytes, binary_types: Collection[str]) -> Download:
    """A message made from the stored mail (``/eml``): in the answer, else kept beside the mail and linked."""
    disposition = content_disposition(f"{mail_id}.eml", False, f"{mail_id}.eml")
    if len(data) <= INLINE_DOWNLOAD_BYTES and MESSAGE_TYPE in binary_types:
        return Download(200, {"Content-Type": MESSAGE_TYPE, "Content-Disposition": disposition, **SAFETY_HEADERS}, data)
    ref = store.keep_message(mail_id, data)
    return Download(302, {"Location": store.link(ref, MESSAGE_TYPE, disposition), **SAFETY_HEADERS}, "")


def _serve(store: MailReads, ref: ObjectRef, served: str, disposition: str, binary_types: Collection[str]) -> Download:
    if ref.size > INLINE_DOWNLOAD_BYTES or served not in binary_types:
        return Download(302, {"Location": store.link(ref, served, disposition), **SAFETY_HEADERS}, "")
    headers = {"Content-Type": served, "Content-Disposition": disposition, **SAFETY_HEADERS}
    return Download(200, headers, store.read(ref))


def content_disposition(filename: str | None, inline: bool, default: str) -> str:
    """RFC 6266: an ASCII fallback name for old clients and ``filename*`` for the real one."""
    name = filename or default
    fallback = "".join(ch if " " <= ch < "\x7f" and ch not in '"\\/' else "_" for ch in name)
    if not fallback.strip(". _"):
        # ".." or a name of nothing but dots: a client saving by the given name must not get one.
        name = fallback = default
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
