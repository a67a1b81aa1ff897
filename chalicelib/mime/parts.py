"""A message's parts: its leaves in order, and what each one's headers say.

Every accessor is total: the email package's own raise on hostile headers, and
one bad part must never cost the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import Message
from typing import TypeVar

from chalicelib.errors import PayloadTooLargeError
from chalicelib.mime import headers, transfer
from chalicelib.mime.stdlib import Buffer, raw_payload
from chalicelib.mime.text import no_surrogates

MAX_MIME_DEPTH = 32
MAX_MIME_PARTS = 1000
# RFC 6838 type and subtype names; anything else is stored as application/octet-stream,
# since the type becomes an S3 object's Content-Type header.
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_WHITESPACE = re.compile(r"\s+")
_COMMENT = re.compile(r"\([^()]*\)")

_T = TypeVar("_T")
# Each multipart above a leaf, and the leaf's index in it.
Path = tuple[tuple[Message, int], ...]


def safe(call: Callable[[], _T], default: _T) -> _T:
    """The email package's accessors on hostile headers: their answer, or the default when they raise."""
    try:
        return call()
    except Exception:
        return default


def media_type(value: object) -> str:
    if isinstance(value, str):
        candidate = value.split(";", 1)[0].strip().lower()
        if _MEDIA_TYPE.fullmatch(candidate):
            return candidate
    return "application/octet-stream"


def content_id(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = _WHITESPACE.sub("", no_surrogates(value)).strip("<>")
    return value or None


def charset(part: Message) -> str | None:
    return safe(part.get_content_charset, None)


def header(part: Message, name: str, hint: str | None) -> str | None:
    """A part's header as text with its 8-bit bytes decoded; the email package's own accessors make them U+FFFD."""
    wanted = name.lower()
    for key, value in part.raw_items():
        if key.lower() == wanted:
            return headers.header_text(value, hint)
    return None


def transfer_encoding(part: Message) -> str:
    value = header(part, "Content-Transfer-Encoding", None) or ""
    value = _COMMENT.sub(" ", value)  # RFC 822 comments: "base64 (by Foo Mailer)"
    words = value.replace('"', " ").split()
    return words[0].lower() if words else ""


def payload(part: Message) -> Buffer:
    """A leaf's body, its transfer encoding undone."""
    return transfer.decode(raw_payload(part), transfer_encoding(part))


def leaves(message: Message) -> list[tuple[Message, Path, str]]:
    """Every non-multipart part in order, with its path and its type.

    A forwarded ``message/rfc822`` is one leaf, not descended into. Iterative,
    with bounds on depth and count, so that a hostile nesting costs neither the
    stack nor unbounded time.
    """
    found: list[tuple[Message, Path, str]] = []
    stack: list[tuple[Message, Path]] = [(message, ())]
    while stack:
        part, path = stack.pop()
        # Read once here: the email package scans every header for each get_content_type().
        content_type = safe(part.get_content_type, "application/octet-stream")
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
        found.append((part, path, content_type))
        if len(found) > MAX_MIME_PARTS:
            raise PayloadTooLargeError(f"the message has more than {MAX_MIME_PARTS} parts")
    return found
