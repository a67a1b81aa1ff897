"""A whole MIME message → the tree ``email.parser.BytesParser(policy=compat32)`` would build, faster.

The stdlib parser reads every line of every part in Python and keeps the
message as lines of text: on a 4 MB mail that was most of the raw decoder's
time and memory. For the shape nearly every mail has (CRLF or LF line ends,
multiparts with a boundary and a close delimiter, forwarded messages in
them) this module finds the delimiter lines with ``bytes.find``, reads each
part's header block as the email package would (``headerblock``), and hands
each leaf its body as a view of the bytes. Anything else (a lone CR, a
missing boundary or close delimiter, a header block the email package reads
differently, ``message/delivery-status`` or ``multipart/digest``) is parsed
by the stdlib parser. The tests pin that both give the same headers,
structure and bodies.

Two differences are deliberate: a leaf's payload is a ``memoryview`` of the
source where the stdlib's is a ``str`` of the same bytes (``stdlib.raw_payload``
reads either), and a forwarded message's part keeps the bytes it had in the
mail (``stdlib.original``), which the decoder stores as the attachment.
"""

from __future__ import annotations

import re
from email import policy
from email.message import Message
from email.parser import BytesParser

from chalicelib.mime import headerblock
from chalicelib.mime.stdlib import keep_original, set_leaf_bytes

# Deeper than this is left to the stdlib parser, whose RecursionError the
# decoder turns into a 413; the decoder itself refuses more than 32 levels.
MAX_DEPTH = 64


def parse(source: bytes, start: int = 0, end: int | None = None) -> Message:
    """The message at ``source[start:end]``, read in place: the source may be a whole request body."""
    end = len(source) if end is None else end
    readable = headerblock.readable_headers(source, start, end)
    if readable is not None:
        source, start, end = readable, 0, len(readable)
    fast = _message(source, start, end, 0)
    if fast is not None:
        return fast
    return BytesParser(policy=policy.compat32).parsebytes(source[start:end] if start or end < len(source) else source)


_BLANK_LINE = re.compile(rb"\n\r?\n")


def _body_start(source: bytes, start: int, end: int) -> int | None:
    """Just past the empty line that ends the header block at ``start``; None when there is none."""
    if source.startswith(b"\n", start, end):
        return start + 1
    if source.startswith(b"\r\n", start, end):
        return start + 2
    blank = _BLANK_LINE.search(source, start, end)
    return blank.end() if blank is not None else None


def _strip_eol(end: int, source: bytes, start: int) -> int:
    """The end of a part's body: the line end before its delimiter belongs to the delimiter."""
    if end - start >= 2 and source[end - 2 : end] == b"\r\n":
        return end - 2
    if end - start >= 1 and source[end - 1] == 0x0A:
        return end - 1
    return end


def _message(source: bytes, start: int, end: int, depth: int) -> Message | None:
    if depth > MAX_DEPTH:
        return None
    body = _body_start(source, start, end)
    if body is None:
        return None
    # None for a lone CR (a line end to the stdlib parser), a line that is no
    # header, or another oddity: the stdlib's own reading.
    message = headerblock.parse_block(source[start:body])
    if message is None:
        return None
    content_type = message.get_content_type()
    if content_type in ("message/delivery-status", "multipart/digest"):
        return None  # the stdlib's own rules: header blocks without bodies, another default type
    maintype = content_type.split("/", 1)[0]
    if maintype == "message":
        # A forwarded message: the stdlib parses what follows the headers as a
        # whole message, to the end of the part, whatever its transfer encoding.
        inner = _message(source, body, end, depth + 1)
        if inner is None:
            return None
        message.set_payload([inner])
        keep_original(message, memoryview(source)[body:end])
        return message
    if maintype != "multipart":
        set_leaf_bytes(message, memoryview(source)[body:end])
        return message
    boundary = message.get_boundary()
    if not boundary:
        return None
    parts = _parts(source, body, end, boundary)
    if parts is None:
        return None
    children: list[Message | str] = []
    for part_start, part_end in parts:
        child = _message(source, part_start, part_end, depth + 1)
        if child is None:
            return None
        children.append(child)
    if not children:
        return None
    message.set_payload(children)
    return message


def _parts(source: bytes, start: int, end: int, boundary: str) -> list[tuple[int, int]] | None:
    """Each part's (start, end) between the delimiter lines; None without a close delimiter.

    A delimiter line is the stdlib's: ``--boundary``, ``--`` for the close one,
    blanks, then the line end, at the start of a line. A lone CR next to one is
    a line end to the stdlib parser and not to this search: such a message is
    left to it.
    """
    try:
        needle = b"--" + boundary.encode("ascii")
    except UnicodeEncodeError:
        return None
    parts: list[tuple[int, int]] = []
    opened: int | None = None
    position = start
    while True:
        index = source.find(needle, position, end)
        if index < 0:
            return None
        position = index + 1
        before = source[index - 1] if index > start else 0x0A
        if before not in (0x0A, 0x0D):
            continue
        after = index + len(needle)
        close = source.startswith(b"--", after, end)
        cursor = after + 2 if close else after
        while cursor < end and source[cursor] in (0x20, 0x09):
            cursor += 1
        if cursor < end and source[cursor] == 0x0D and not source.startswith(b"\r\n", cursor, end):
            return None
        if cursor < end and source[cursor] not in (0x0A, 0x0D):
            continue
        if before == 0x0D:
            return None
        if opened is not None:
            parts.append((opened, _strip_eol(index, source, opened)))
        if close:
            return parts
        line_end = source.find(b"\n", cursor, end)
        if line_end < 0:
            return None
        opened = line_end + 1
