"""The one place that reaches into the email package's private parts.

The fast paths (``headerblock``, ``tree``) build the same ``email.message.Message``
objects the stdlib parser builds, without its line-by-line machinery, and the
decoder reads a part's payload as the bytes it was sent as, which no public
accessor gives. Each of these leans on how CPython's ``email.message.Message``
keeps its state (``_headers``, ``_unixfrom``, ``_payload``) under
``policy.compat32``; ``tests/unit/mime/test_stdlib.py`` pins every one of
them, so a Python release that changes them fails there first.
"""

from __future__ import annotations

from email import policy
from email.message import Message

# A part's bytes: decoded into a new buffer, or a view of the request body when sent as is.
Buffer = bytes | bytearray | memoryview

# The bytes a forwarded message (``message/*``) has in its mail, kept on its
# part: the decoder stores them rather than a re-serialisation of the tree.
_ORIGINAL = "_inbound_mail_original"


def headers_only(headers: list[tuple[str, str]], unixfrom: str | None) -> Message:
    """What the feedparser leaves for a block that is only headers.

    Each header as ``compat32``'s ``header_source_parse`` stores it, the
    unix-from line or None, and an empty payload.
    """
    message = Message(policy=policy.compat32)
    vars(message).update(_headers=headers, _unixfrom=unixfrom, _payload="")
    return message


def set_leaf_bytes(message: Message, view: memoryview) -> None:
    """A leaf's body as a view of the source: no copy, where the stdlib keeps a str of the same bytes."""
    message.set_payload(view)  # type: ignore[call-overload]  # stored as given


def keep_original(message: Message, view: memoryview) -> None:
    vars(message)[_ORIGINAL] = view


def original(part: Message) -> memoryview | None:
    """The bytes a forwarded message had in its mail, where the fast tree read it."""
    found: memoryview | None = vars(part).get(_ORIGINAL)
    return found


def raw_payload(part: Message) -> Buffer:
    """A leaf's payload as it was sent, before any transfer decoding.

    The stdlib's parser stores a str holding the original bytes as ASCII and
    surrogate escapes (``get_payload()`` would decode it lossily first); the
    fast tree stores a view of the source.
    """
    payload = vars(part).get("_payload")
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    if isinstance(payload, bytes | memoryview):
        return payload
    return b""
