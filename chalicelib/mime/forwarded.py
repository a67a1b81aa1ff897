"""A forwarded message (``message/rfc822`` and kin) as the bytes it had in its mail, not a re-serialisation."""

from __future__ import annotations

import re
from collections.abc import Callable
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser

from chalicelib.mime import transfer
from chalicelib.mime.parts import Path, payload, safe, transfer_encoding
from chalicelib.mime.stdlib import Buffer, original

__all__ = ["forwarded_bytes"]

_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")  # the email package's headerRE
_LINE_END = re.compile(rb"\r\n|\r|\n")


def _body_start(data: bytes) -> int:
    """Where the body begins after a header block, by the email package's own rules."""
    pos = 0
    while pos < len(data):
        end = _LINE_END.search(data, pos)
        line_end = end.end() if end else len(data)
        if end is not None and end.start() == pos:
            return line_end  # the empty line
        if not _HEADER_LINE.match(data, pos):
            return pos  # a line that is no header starts the body
        pos = line_end
    return len(data)


def _nth_part(body: bytes, boundary: str, index: int) -> bytes | None:
    """The bytes of part `index` of a multipart body, as the email package splits it."""
    escaped = re.escape(boundary.encode("utf-8", "surrogateescape"))
    delimiter = re.compile(rb"(?:\A|(?<=[\r\n]))--" + escaped + rb"(--)?[ \t]*(?:\r\n|\r|\n|\Z)")
    found = -1
    start: int | None = None
    for match in delimiter.finditer(body):
        if start is not None:
            end = match.start()
            end -= 2 if body[end - 2 : end] == b"\r\n" else 1 if end > start else 0
            return body[start : max(start, end)]
        if match.group(1):
            return None  # the close delimiter
        found += 1
        if found == index:
            start = match.end()
    return body[start:] if start is not None else None


def _original_body(source: bytes, path: Path) -> bytes | None:
    data = source[_body_start(source) :]
    for multipart, index in path:
        boundary = safe(multipart.get_boundary, None)
        if not boundary:
            return None
        part = _nth_part(data, boundary, index)
        if part is None:
            return None
        data = part[_body_start(part) :]
    return data


def _same_headers(data: bytes, inner: Message) -> bool:
    try:
        parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(data)
        return list(parsed.raw_items()) == list(inner.raw_items())
    except Exception:
        return False


def forwarded_bytes(part: Message, path: Path, message: Callable[[], bytes]) -> Buffer:
    """A forwarded message (message/rfc822, message/global, …) as the bytes it had in the mail.

    compat32's as_bytes() re-folds long headers and rewrites line ends, so the bytes are
    cut from the original instead: where the fast tree parsed it, the bytes it parsed; else the
    email package's own split of ``message()``, checked against what it parsed. A
    forwarded message sent in base64 or quoted-printable is decoded.
    """
    encoding = transfer_encoding(part)
    encoded = encoding in transfer.ENCODINGS
    cut = original(part)
    if cut is not None:  # the very bytes the tree was read from
        return bytes(transfer.decode(cut, encoding)) if encoded else cut
    cut_again = _original_body(message(), path)
    if cut_again is not None:
        if encoded:
            return bytes(transfer.decode(cut_again, encoding))
        inner = part.get_payload(0) if part.is_multipart() else None
        if not isinstance(inner, Message) or _same_headers(cut_again, inner):
            return cut_again
    children = part.get_payload()
    if isinstance(children, list) and children and isinstance(children[0], Message):
        return safe(children[0].as_bytes, b"")
    return bytes(payload(part))

