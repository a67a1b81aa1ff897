"""How a stored object leaves: its bytes in the answer when API Gateway can carry them, else a short-lived S3 link.

Lambda answers at most 6 MB (4.5 MB of bytes once base64), and API Gateway
passes bytes untouched only for the binary types declared on the API.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from chalicelib.storage.store import MailStore, ObjectRef

INLINE_DOWNLOAD_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Download:
    status: int
    headers: dict[str, str]
    body: bytes | str  # "" for a redirect: API Gateway and Chalice's test client take an empty body as text


def download(store: MailStore, ref: ObjectRef, binary_types: Collection[str]) -> Download:
    content_type = ref.content_type or "application/octet-stream"
    disposition = content_disposition(ref.attachment) if ref.attachment is not None else None
    if ref.size > INLINE_DOWNLOAD_BYTES or content_type.split(";")[0].strip().lower() not in binary_types:
        return Download(302, {"Location": store.link(ref, disposition)}, "")
    headers = {"Content-Type": content_type}
    if disposition:
        headers["Content-Disposition"] = disposition
    return Download(200, headers, store.read(ref))


def content_disposition(attachment: dict[str, Any]) -> str:
    """RFC 6266: an ASCII fallback name for old clients and ``filename*`` for the real one."""
    index = attachment["index"]
    name = attachment["filename"] or f"attachment-{index}"
    fallback = "".join(ch if " " <= ch < "\x7f" and ch not in '"\\/' else "_" for ch in name)
    if not fallback.strip(". _"):
        # ".." or a name of nothing but dots: a client saving by the given name must not get one.
        name = fallback = f"attachment-{index}"
    kind = "inline" if attachment["disposition"] == "inline" else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
