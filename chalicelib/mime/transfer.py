"""Content-Transfer-Encodings as they occur in the wild → bytes, never raising.

base64 that is broken, padded per chunk or followed by a mailing list's
footer; quoted-printable; x-uuencode. 7bit, 8bit, binary and names we do not
know leave the bytes as sent.
"""

from __future__ import annotations

import binascii
import re

from chalicelib.mime.stdlib import Buffer

__all__ = ["ENCODINGS", "decode"]

# Every name that transforms the bytes; the rest are identities.
ENCODINGS = frozenset({"base64", "quoted-printable", "quotedprintable", "x-uuencode", "uuencode", "uue", "x-uue"})
_BASE64_WHOLE = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/=]*")
_PADDING = re.compile(rb"=+")
_BLANKS = b" \t\r\n\x0b\x0c"
_UU_BEGIN = re.compile(rb"begin(?:\s|$)", re.IGNORECASE)


def _base64_chunks(data: bytes) -> bytes:
    # The usual body, one run padded only at its end, in one C call.
    stripped = data.rstrip()
    if stripped.find(b"=", 0, max(len(stripped) - 2, 0)) < 0:
        try:
            return binascii.a2b_base64(stripped)
        except binascii.Error:
            pass  # missing or stray padding: the careful path below
    # Padding in the middle: encoders that wrote each chunk on its own. A trailing single
    # character makes no byte and is dropped; missing padding is added.
    out = []
    for chunk in _PADDING.split(data):
        chunk = chunk[: len(chunk) - len(chunk) % 4] if len(chunk) % 4 == 1 else chunk
        if chunk:
            out.append(binascii.a2b_base64(chunk + b"=" * (-len(chunk) % 4)))
    return b"".join(out)


# Encoded text read per step of _base64_in_place: small enough to stay in the CPU's cache.
_BASE64_STEP = 64 * 1024


def _base64_in_place(data: Buffer) -> bytearray | None:
    """Well-formed base64 (whitespace aside), decoded a step at a time into one buffer; None for anything else.

    The common case, read without the careful path's whole-size copies and
    its shape check. Strict mode refuses exactly what that check and the
    decoder would treat specially (a character outside the alphabet, padding
    before the end, a length that is no multiple of four), so whatever it
    accepts decodes to the same bytes as the careful path.
    """
    view = memoryview(data)
    out = bytearray(len(view) // 4 * 3 + 3)
    written = 0
    carry = b""
    padded = False
    for start in range(0, len(view), _BASE64_STEP):
        text = view[start : start + _BASE64_STEP].tobytes().translate(None, _BLANKS)
        if carry:
            text = carry + text
        if not text:
            continue
        if padded:
            return None  # text after the padding
        usable = len(text) - len(text) % 4
        carry = text[usable:]
        if usable:
            try:
                piece = binascii.a2b_base64(text[:usable] if carry else text, strict_mode=True)
            except binascii.Error:
                return None
            out[written : written + len(piece)] = piece
            written += len(piece)
            padded = text[usable - 1] == 0x3D  # "="
    if carry:
        return None  # missing padding: the careful path adds it
    del out[written:]
    return out


def _base64(data: Buffer) -> Buffer:
    """Lenient base64: the stdlib returns the encoded text itself for a truncated body, and decodes list footers."""
    fast = _base64_in_place(data)
    return fast if fast is not None else _base64_careful(bytes(data))


def _base64_careful(data: bytes) -> bytes:
    compact = data.translate(None, _BLANKS)
    if _BASE64_WHOLE.fullmatch(compact):
        return _base64_chunks(compact)
    # Something that is not base64 follows the data (a mailing list's footer, as a rule):
    # decode the lines up to it.
    lines = []
    for line in data.splitlines():
        line = line.strip(_BLANKS)
        if not _BASE64_LINE.fullmatch(line):
            break
        lines.append(line)
    if not any(lines):
        return data  # not base64 at all, whatever the header says: keep what was sent
    return _base64_chunks(b"".join(lines))


def _uudecode(data: bytes) -> bytes:
    lines = iter(data.splitlines())
    for line in lines:
        if _UU_BEGIN.match(line.strip()):
            break
    else:
        return data
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped == b"end":
            break
        if not stripped or stripped == b"`":
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            # Trailing garbage from broken encoders, as the stdlib's own workaround.
            try:
                out.append(binascii.a2b_uu(line[: (((line[0] - 32) & 63) * 4 + 5) // 3]))
            except binascii.Error:
                continue
    return b"".join(out)


def decode(data: Buffer, encoding: str) -> Buffer:
    """``data`` sent in ``encoding`` (a lower-cased name), decoded; the bytes as sent when it cannot be."""
    try:
        if encoding == "base64":
            return _base64(data)
        if encoding in ("quoted-printable", "quotedprintable"):
            return binascii.a2b_qp(data)
        if encoding in ("x-uuencode", "uuencode", "uue", "x-uue"):
            return _uudecode(bytes(data))
    except (binascii.Error, ValueError):
        return data
    return data  # 7bit, 8bit, binary, or a name we do not know: the bytes as sent

