"""A multipart/form-data body → its fields and file parts.

Our own parser rather than requests-toolbelt's ``MultipartDecoder``, for two
reasons measured in ``bench/`` and pinned in ``tests/test_multipart.py``:
toolbelt splits only on CRLF delimiters, while SendGrid's own sample payloads
use bare LF; and it copies every part (``bytes.split`` then a second split per
part), where this parser finds delimiters with ``bytes.find`` and hands file
contents out as ``memoryview`` slices of the one request body. The tests check
that both parsers agree on every CRLF body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message

from chalicelib.errors import MalformedMailError, PayloadTooLargeError, UnsupportedMediaTypeError

MAX_PARTS = 1000
MAX_PART_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True)
class FilePart:
    name: str
    filename: str | None
    content_type: str | None
    data: memoryview = field(repr=False)


@dataclass(frozen=True)
class Form:
    # Field values stay bytes: their charset is only known from SendGrid's
    # ``charsets`` field, read later.
    fields: dict[str, bytes]
    files: dict[str, FilePart]


def boundary_of(content_type: str | None) -> bytes:
    if not content_type:
        raise UnsupportedMediaTypeError("Content-Type is missing")
    message = Message()
    message["Content-Type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        raise UnsupportedMediaTypeError("Content-Type is not multipart/form-data")
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 200:
        raise MalformedMailError("multipart boundary is missing or invalid")
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedMailError("multipart boundary is not ASCII") from None


def _delimiter_at(body: bytes, delimiter: bytes, start: int) -> int:
    """Index of the next delimiter line at or after start: at a line start, followed by ``--``, space or a line end."""
    while True:
        index = body.find(delimiter, start)
        if index < 0:
            return -1
        at_line_start = index == 0 or body[index - 1] == 0x0A
        after = body[index + len(delimiter) : index + len(delimiter) + 2]
        if at_line_start and (after[:1] in (b"\r", b"\n", b" ", b"\t", b"") or after == b"--"):
            return index
        start = index + 1


def _line_end(body: bytes, index: int) -> int:
    """Index just past the line that holds index."""
    newline = body.find(b"\n", index)
    return len(body) if newline < 0 else newline + 1


def _part_headers(block: bytes) -> Message:
    message = Message()
    text = block.decode("utf-8", "replace")
    name = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and name is not None:
            message.replace_header(name, str(message[name]) + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep:
            name = None
            continue
        name = name.strip()
        message[name] = value.strip()
    return message


def parse(body: bytes, content_type: str | None) -> Form:
    delimiter = b"--" + boundary_of(content_type)
    view = memoryview(body)
    fields: dict[str, bytes] = {}
    files: dict[str, FilePart] = {}
    index = _delimiter_at(body, delimiter, 0)
    if index < 0:
        raise MalformedMailError("multipart body has no opening boundary")
    parts = 0
    while True:
        after = index + len(delimiter)
        if body[after : after + 2] == b"--":
            break
        start = _line_end(body, after)
        following = _delimiter_at(body, delimiter, start)
        if following < 0:
            raise MalformedMailError("multipart body ends without a closing boundary")
        parts += 1
        if parts > MAX_PARTS:
            raise PayloadTooLargeError(f"multipart body has more than {MAX_PARTS} parts")
        # The content ends before the line break that precedes the next delimiter.
        end = following - 1
        if end > start and body[end - 1] == 0x0D:
            end -= 1
        end = max(end, start)
        if body[start : start + 1] == b"\n":
            header_end, content_start = start, start + 1
        elif body[start : start + 2] == b"\r\n":
            header_end, content_start = start, start + 2
        else:
            crlf = body.find(b"\r\n\r\n", start, end)
            lf = body.find(b"\n\n", start, end)
            candidates = [(i, i + 4) for i in (crlf,) if i >= 0] + [(i, i + 2) for i in (lf,) if i >= 0]
            if not candidates:
                raise MalformedMailError("multipart part has no header end")
            header_end, content_start = min(candidates)
        if header_end - start > MAX_PART_HEADER_BYTES:
            raise PayloadTooLargeError("multipart part headers are too long")
        headers = _part_headers(body[start:header_end])
        name = headers.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise MalformedMailError("multipart part has no form-data name")
        filename = headers.get_filename()
        content = view[min(content_start, end) : end]
        if filename is not None:
            files.setdefault(name, FilePart(name, filename, headers.get("Content-Type"), content))
        else:
            fields.setdefault(name, bytes(content))
        index = following
    return Form(fields, files)
