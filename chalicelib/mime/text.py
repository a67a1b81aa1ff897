"""Header text as it arrives, made safe: raw 8-bit bytes restored, lines unfolded, no lone surrogates.

Header bytes decoded with ``surrogateescape`` (as Python's email package does
with ``compat32``) arrive as lone surrogates U+DC80..U+DCFF. They are turned
back into their bytes and decoded as UTF-8 when valid, else as windows-1252
(the guess ``charsets.decode`` makes for unlabelled bytes); other lone
surrogates become U+FFFD, so that every string can be encoded as UTF-8 and
stored. Raw 7-bit ISO-2022-JP (``ESC $ B``), as old Japanese mailers send it,
is decoded as such.
"""

from __future__ import annotations

import re

from chalicelib.mime import charsets

ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
OTHER_SURROGATE = re.compile("[\ud800-\udc7f\udd00-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_FOLD = re.compile(r"(?:\r\n|\r|\n)(?=[ \t])")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def no_surrogates(value: str) -> str:
    """Every lone surrogate as U+FFFD: json.dumps(...).encode("utf-8") would raise on one."""
    return _SURROGATE.sub("\ufffd", value)


def plain(value: str) -> bool:
    """7-bit text without ESC: no 8-bit byte to decode and no raw ISO-2022-JP, so it stays as it is."""
    return value.isascii() and "\x1b" not in value


def restore_8bit(value: str) -> str:
    if value.isascii():
        if "\x1b$" in value:
            return charsets.decode(value.encode("ascii"), "iso-2022-jp")
        return value
    value = OTHER_SURROGATE.sub("\ufffd", value)
    if not ESCAPED_BYTE.search(value):
        return value
    # Re-encoding the whole value gives back the original bytes (whether it was decoded as
    # ASCII or as UTF-8 with surrogateescape), so a multi-byte character whose bytes were
    # partly ASCII (Shift_JIS trail bytes) is decoded whole.
    return charsets.decode(value.encode("utf-8", "surrogateescape"), None)


def unfold(value: str) -> str:
    # RFC 5322 unfolding removes the line break before whitespace; a bare line break left
    # inside a value would glue two words together, so it becomes a space.
    return _LINE_BREAK.sub(" ", _FOLD.sub("", value))


def clean(value: str) -> str:
    return unfold(restore_8bit(value))


def joined(parts: list[str]) -> str | None:
    """Several bodies of one kind (Apple Mail writes text, image, text) in order, each on its own lines."""
    if not parts:
        return None
    out = [parts[0]]
    for part in parts[1:]:
        if out[-1] and not out[-1].endswith(("\n", "\r")):
            out.append("\n")
        out.append(part)
    return "".join(out)


# A parenthesis, or a backslash with the character it escapes (which is then no parenthesis).
_PARENTHESIS_OR_ESCAPE = re.compile(r"\\.?|[()]", re.DOTALL)


def without_comments(text: str) -> str:
    """RFC 5322 comments (``(…)``, nested, with ``\\`` escapes) removed from a structured header value.

    One pass, linear in the text however deep the nesting; an unclosed comment runs to the end.
    """
    if "(" not in text:
        return text
    kept: list[str] = []
    depth = 0
    position = 0  # the start of text not yet kept or dropped
    for found in _PARENTHESIS_OR_ESCAPE.finditer(text):
        char = found.group()
        if char == "(":
            if depth == 0:
                kept.append(text[position : found.start()])
            depth += 1
        elif char == ")" and depth > 0:
            depth -= 1
            if depth == 0:
                position = found.end()
    if depth == 0:
        kept.append(text[position:])
    return "".join(kept)
