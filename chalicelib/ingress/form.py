"""A multipart/form-data body → its fields and file parts, for every ingress that posts a form.

Our own parser rather than requests-toolbelt's ``MultipartDecoder``, for two
reasons: toolbelt splits only on CRLF delimiters, while SendGrid's own sample
payloads use bare LF; and it copies every part, where this parser finds
delimiters with ``bytes.find`` and hands file contents out as ``memoryview``
slices of the one request body. The tests check that both parsers agree on
every CRLF body; docs/design/performance.md has the figures.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.utils import unquote
from typing import Any, NamedTuple, TypeVar, overload

from chalicelib.errors import MalformedMailError, PayloadTooLargeError, UnsupportedMediaTypeError
from chalicelib.mime import charsets
from chalicelib.mime.text import no_surrogates

MAX_PARTS = 1000
_T = TypeVar("_T")
MAX_PART_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True)
class FilePart:
    name: str
    filename: str | None
    content_type: str | None
    data: memoryview = field(repr=False)


class Fields(Mapping[str, bytes]):
    """The form's plain fields, name → bytes, each cut from the request body when read.

    Cut on reading rather than copied up front, so that a field holding a whole
    message is never copied: the decoder reads it in place through
    ``Form.span``. The small fields are read once or twice each; a slice costs
    no more than the copy it replaces.
    """

    __slots__ = ("_body", "_spans")

    def __init__(self, body: bytes, spans: dict[str, tuple[int, int]]) -> None:
        self._body = body
        self._spans = spans

    def __getitem__(self, name: str) -> bytes:
        start, end = self._spans[name]
        return self._body[start:end]

    @overload
    def get(self, name: str, /) -> bytes | None: ...
    @overload
    def get(self, name: str, default: bytes, /) -> bytes: ...
    @overload
    def get(self, name: str, default: _T, /) -> bytes | _T: ...

    def get(self, name: str, default: object = None, /) -> object:
        # Mapping's own get goes through __getitem__ and an exception for a missing name.
        span = self._spans.get(name)
        return default if span is None else self._body[span[0] : span[1]]

    def __contains__(self, name: object) -> bool:
        return name in self._spans

    def __iter__(self) -> Iterator[str]:
        return iter(self._spans)

    def __len__(self) -> int:
        return len(self._spans)


@dataclass(frozen=True)
class Form:
    # Field values stay bytes: their charset is only known from SendGrid's
    # ``charsets`` field, read later.
    fields: Fields
    files: dict[str, FilePart]

    def span(self, name: str) -> tuple[bytes, int, int] | None:
        """A field where it lies: the request body and the field's start and end in it."""
        found = self.fields._spans.get(name)
        return None if found is None else (self.fields._body, found[0], found[1])


# The shape almost every sender writes: one boundary parameter, a token or a
# quoted string without escapes. Anything else goes through the email package,
# which takes a hundred times as long but knows every corner of RFC 2045.
_SIMPLE_FORM_TYPE = re.compile(
    r'\s*multipart/form-data\s*;\s*boundary\s*=\s*(?:"([^"\\]*)"|([^\s;"\\]*))\s*;?\s*',
    re.IGNORECASE,
)


def boundary_of(content_type: str | None) -> bytes:
    if not content_type:
        raise UnsupportedMediaTypeError("Content-Type is missing")
    simple = _SIMPLE_FORM_TYPE.fullmatch(content_type)
    boundary: object
    if simple is not None:
        boundary = simple.group(1) if simple.group(1) is not None else simple.group(2)
    else:
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


# What may follow a delimiter: a line end, blanks, the close delimiter's "--", or the body's end.
_AFTER_DELIMITER = frozenset(b"\r\n \t")


def _delimiter_at(body: bytes, delimiter: bytes, start: int) -> int:
    """Index of the next delimiter line at or after start: at a line start, followed by ``--``, space or a line end."""
    while True:
        index = body.find(delimiter, start)
        if index < 0:
            return -1
        if index == 0 or body[index - 1] == 0x0A:
            after = index + len(delimiter)
            if after >= len(body) or body[after] in _AFTER_DELIMITER or body.startswith(b"--", after):
                return index
        start = index + 1


class _PartHeaders(NamedTuple):  # a tuple: made once per part, a dozen times per post
    name: object  # str when the part names its field; anything else is refused by the caller
    filename: str | None
    content_type: str | None


# A form-data disposition whose parameters are tokens or quoted strings
# without escapes and without RFC 2231 ``*`` forms: every part a sender like
# SendGrid writes. The rest goes through the email package (see _slow_headers).
_SIMPLE_DISPOSITION = re.compile(
    r'\s*form-data((?:\s*;\s*[A-Za-z0-9_.-]+\s*=\s*(?:"[^"\\]*"|[^\s;"\\*]*))*)\s*;?\s*', re.IGNORECASE
)
_SIMPLE_PARAM = re.compile(r'\s*;\s*([A-Za-z0-9_.-]+)\s*=\s*("[^"\\]*"|[^\s;"\\*]*)')


def _header_lines(block: bytes) -> dict[str, str] | None:
    """Lower-cased name → first value; None when a line is folded (left to the email package)."""
    found: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").splitlines():
        if line[:1] in (" ", "\t"):
            return None
        name, sep, value = line.partition(":")
        if sep:
            found.setdefault(name.strip().lower(), value.strip())
    return found


# The commonest block of all, a plain field's one header, read straight from the bytes.
_FIELD_ONLY = re.compile(rb'content-disposition[ \t]*:[ \t]*form-data[ \t]*;[ \t]*name="([^"\\<>]*)"[ \t]*',
                         re.IGNORECASE)


def _part_headers(block: bytes) -> _PartHeaders:
    """The three things a part's headers tell: its field name, its file name, its type.

    The same answers as ``email.message.Message.get_param`` and ``get_filename``
    (``_slow_headers``; the tests compare the two), at a fraction of the cost
    for the simple headers every real sender writes: a post has a dozen parts or more.
    """
    field_only = _FIELD_ONLY.fullmatch(block)
    if field_only is not None:
        return _PartHeaders(field_only.group(1).decode("utf-8", "replace"), None, None)
    lines = _header_lines(block)
    if lines is None:
        return _slow_headers(block)
    disposition = lines.get("content-disposition")
    content_type = lines.get("content-type")
    if disposition is None:
        # No disposition: no name, and get_filename would look at Content-Type's name.
        return _slow_headers(block) if content_type and "name" in content_type.lower() else _PartHeaders(
            None, None, content_type
        )
    simple = _SIMPLE_DISPOSITION.fullmatch(disposition)
    if simple is None:
        return _slow_headers(block)
    params: dict[str, str] = {}
    for match in _SIMPLE_PARAM.finditer(simple.group(1)):
        # email.utils.unquote strips quotes or angle brackets: get_param does it
        # once, get_filename once more.
        params.setdefault(match.group(1).lower(), unquote(match.group(2)))
    filename = params.get("filename")
    if filename is None and content_type and "name" in content_type.lower():
        return _slow_headers(block)  # get_filename falls back to Content-Type's name parameter
    name = params.get("name")
    return _PartHeaders(name, unquote(filename).strip() if filename is not None else None, content_type)


def _slow_headers(block: bytes) -> _PartHeaders:
    """Any header block at all, through the email package: folded lines, escapes, RFC 2231 names."""
    message = Message()
    name = None
    for line in block.decode("utf-8", "replace").splitlines():
        if line[:1] in (" ", "\t") and name is not None:
            message.replace_header(name, str(message[name]) + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep:
            name = None
            continue
        name = name.strip()
        message[name] = value.strip()
    content_type = message.get("Content-Type")
    return _PartHeaders(
        message.get_param("name", header="content-disposition"),
        message.get_filename(),
        None if content_type is None else str(content_type),
    )


def _header_end(body: bytes, start: int, end: int) -> tuple[int, int]:
    """Where a part's header block ends and its content starts: the first blank line, CRLF or bare LF.

    Searched within the header bound only, so that a multi-megabyte part is not
    scanned for a blank line it does not need.
    """
    window = min(end, start + MAX_PART_HEADER_BYTES + 4)
    crlf = body.find(b"\r\n\r\n", start, window)
    lf = body.find(b"\n\n", start, crlf + 2 if crlf >= 0 else window)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf, lf + 2
    if crlf >= 0:
        return crlf, crlf + 4
    if window < end and (body.find(b"\r\n\r\n", start, end) >= 0 or body.find(b"\n\n", start, end) >= 0):
        raise PayloadTooLargeError("multipart part headers are too long")
    raise MalformedMailError("multipart part has no header end")


def parse(body: bytes, content_type: str | None) -> Form:
    """Every part, named once: a name twice is ambiguous (which copy did the provider write?) and refused."""
    view = memoryview(body)
    spans: dict[str, tuple[int, int]] = {}
    files: dict[str, FilePart] = {}
    for start, header_end, content_start, end in _parts(body, b"--" + boundary_of(content_type)):
        field_only = _FIELD_ONLY.fullmatch(body, start, header_end)  # most parts: read in place
        if field_only is not None:
            name: object = field_only.group(1).decode("utf-8", "replace")
            filename, part_type = None, None
        else:
            name, filename, part_type = _part_headers(body[start:header_end])
        if not isinstance(name, str):
            raise MalformedMailError("multipart part has no form-data name")
        if name in spans or name in files:
            raise MalformedMailError("the form carries a field twice")
        if filename is None:
            spans[name] = (content_start, end)
        else:
            files[name] = FilePart(name, filename, part_type, view[content_start:end])
    return Form(Fields(body, spans), files)


def _parts(body: bytes, delimiter: bytes) -> Iterator[tuple[int, int, int, int]]:
    """Each part's start, the end of its header block, and its content's start and end."""
    index = _delimiter_at(body, delimiter, 0)
    if index < 0:
        raise MalformedMailError("multipart body has no opening boundary")
    parts = 0
    while not body.startswith(b"--", index + len(delimiter)):
        newline = body.find(b"\n", index + len(delimiter))
        start = len(body) if newline < 0 else newline + 1
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
        if body.startswith(b"\n", start):
            header_end, content_start = start, start + 1
        elif body.startswith(b"\r\n", start):
            header_end, content_start = start, start + 2
        else:
            header_end, content_start = _header_end(body, start, end)
        if header_end - start > MAX_PART_HEADER_BYTES:
            raise PayloadTooLargeError("multipart part headers are too long")
        yield start, header_end, min(content_start, end), end
        index = following


def json_object(raw: bytes | None) -> dict[str, Any]:
    """A field holding a JSON object; anything else, or junk, is an empty one."""
    if not raw:
        return {}
    try:
        value = json.loads(charsets.decode(raw, "utf-8"))
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def text_field(form: Form, name: str) -> str | None:
    """A short field as stripped text (UTF-8, else windows-1252); None when absent or blank."""
    raw = form.fields.get(name)
    if raw is None:
        return None
    value = no_surrogates(charsets.decode(raw, "utf-8")).strip()
    return value or None
