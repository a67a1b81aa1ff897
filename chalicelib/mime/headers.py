"""Raw header values and header blocks → text, every function total.

Headers arrive broken in every way mail allows (8-bit bytes in undeclared
charsets, malformed RFC 2047 words, unterminated quotes), and one bad header
must never cost the whole message: what cannot be understood is kept as
literal text or replaced by U+FFFD.
"""

from __future__ import annotations

import re

from chalicelib.mime import charsets
from chalicelib.mime.text import no_surrogates, plain
from chalicelib.mime.words import LINEAR_WHITESPACE, decode_words

__all__ = ["decode_header_pairs", "first_header", "header_text", "split_header_block"]


# RFC 5322 field-name: printable US-ASCII except ":" (which we split on).
_FIELD_NAME = re.compile(rb"[\x21-\x7e]+")


def _decode_raw(value: bytes, charset: str | None) -> str:
    if b"\x1b" not in value:
        if value.isascii():
            return value.decode("ascii")
        try:
            return value.decode("utf-8")  # RFC 6532 headers
        except UnicodeDecodeError:
            pass
    elif value.isascii() and b"\x1b$" in value:
        return charsets.decode(value, "iso-2022-jp")
    if charsets.codec_for(charset) == "utf-8":
        # These bytes are not UTF-8 whatever the hint says: the windows-1252 guess keeps
        # every byte as a character where UTF-8 would make each one U+FFFD.
        charset = None
    return charsets.decode(value, charset)


def header_text(value: bytes | str, charset: str | None = None) -> str:
    """A raw header value as text, RFC 2047 words and folding left as they are.

    `value` is the header's bytes, or a string holding them as ``surrogateescape``
    escapes (what Python's email package gives with ``compat32``). 7-bit values are
    returned as they are (raw ISO-2022-JP decoded); 8-bit values are UTF-8 when valid
    (RFC 6532), else decoded in `charset`, the hint a caller has for the sender's
    charset (the message's own charset, SendGrid's ``charsets`` entry); without a
    hint, or with a UTF-8 one, windows-1252. The result never holds a lone surrogate.
    """
    # 7-bit without ESC: what the careful path below returns, without its cost.
    if isinstance(value, str):
        if plain(value):
            return value
    elif isinstance(value, bytes) and value.isascii() and b"\x1b" not in value:
        return value.decode("ascii")
    try:
        raw = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
        return no_surrogates(_decode_raw(bytes(raw), charset))
    except Exception:  # total by contract: a string with other lone surrogates, say
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        return no_surrogates(text)


def _split_header_block(block: bytes) -> list[tuple[str, bytes]]:
    fields: list[tuple[str, list[bytes]]] = []
    current: list[bytes] | None = None
    for line in block.splitlines(keepends=True):
        if not line.strip(b"\r\n"):
            if fields:
                break  # the empty line that ends a header section
            continue
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        colon = line.find(b":")
        name = line[:colon].rstrip(b" \t") if colon > 0 else b""
        if not _FIELD_NAME.fullmatch(name):
            current = None  # its continuation lines belong to it, not to the header before
            continue
        current = [line[colon + 1 :]]
        fields.append((name.decode("ascii"), current))
    return [(name, b"".join(lines).rstrip(b"\r\n")) for name, lines in fields]


def split_header_block(block: bytes) -> list[tuple[str, bytes]]:
    """Ordered (name, raw value) pairs of a raw header block, values as bytes with their folding kept.

    Lines end in LF, CRLF or CR. Lines that are not a ``name: value`` header (no
    colon, or a name with spaces such as an mbox ``From `` line) are skipped with
    their continuation lines, as are continuation lines before the first header;
    an empty line ends the block. The values stay bytes for callers that must
    parse a value's structure before decoding its words, as an address list must.
    """
    try:
        return _split_header_block(bytes(block))
    except Exception:  # total by contract
        return []


def decode_header_pairs(pairs: list[tuple[str, bytes]], charset: str | None = None) -> list[tuple[str, str]]:
    """Each value unfolded, its 8-bit bytes decoded (UTF-8 if valid, else ``charset``), its words decoded, stripped."""
    try:
        return [(name, decode_words(header_text(value, charset)).strip(LINEAR_WHITESPACE)) for name, value in pairs]
    except Exception:  # total by contract
        return []


def first_header(pairs: list[tuple[str, str]], name: str) -> str | None:
    """The first value of a header, by name in any case."""
    name = name.lower()
    for key, value in pairs:
        if key.lower() == name:
            return value
    return None
