"""RFC 2047 encoded words (``=?charset?B?...?=``) in header values → text; total, as mail needs."""

from __future__ import annotations

import base64
import binascii
import re

from chalicelib.mime import charsets
from chalicelib.mime.text import clean, no_surrogates, plain

__all__ = ["LINEAR_WHITESPACE", "decode_words"]


# Encoded text may not contain "?" or whitespace (RFC 2047 section 5), which also keeps the
# scan linear: each start scans only up to the next "?" or space.
_ENCODED_WORD = re.compile(r"=\?([^?\s]*+)\?([bBqQ])\?([^?\s]*+)\?=")
LINEAR_WHITESPACE = " \t\r\n"
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/\-_]*")
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


def _b_decode(text: str) -> tuple[bytes, bool] | None:
    """Bytes of a B word and whether any bits were left over; None when it is not base64."""
    core = text.rstrip("=")
    if not _BASE64_TEXT.fullmatch(core):
        return None
    core = core.translate(_URLSAFE_TO_STANDARD)
    dangling = len(core) % 4 == 1  # six bits that make no byte: the word was cut short
    if dangling:
        core = core[:-1]
    try:
        return base64.b64decode(core + "=" * (-len(core) % 4), validate=True), dangling
    except (binascii.Error, ValueError):
        return None


def _q_decode(text: str) -> bytes:
    # header=True makes "_" a space; a "=" not followed by two hex digits stays literal.
    return binascii.a2b_qp(text.encode("utf-8"), header=True)


def _charset_key(label: str) -> str:
    return charsets.codec_for(label) or label.strip().lower()


def _decode_words(value: str) -> str:
    out: list[str] = []
    # Bytes of adjacent words in one charset, decoded together so that a character split
    # across two words comes out whole.
    run: list[bytes] = []
    run_charset: str | None = None
    run_key: str | None = None

    def flush() -> None:
        nonlocal run, run_charset, run_key
        if run:
            out.append(charsets.decode(b"".join(run), run_charset))
        run, run_charset, run_key = [], None, None

    pos = 0
    previous_was_word = False
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        # RFC 2047 6.2: whitespace between two encoded words is not displayed.
        if not (previous_was_word and not between.strip(LINEAR_WHITESPACE)):
            flush()
            out.append(between)
        label, kind, text = match.groups()
        label = label.split("*", 1)[0]  # RFC 2231 language suffix: =?utf-8*ja?B?...?=
        if kind in "bB":
            decoded = _b_decode(text)
            if decoded is None:
                flush()
                out.append(match.group(0))
                previous_was_word = False
                pos = match.end()
                continue
            data, dangling = decoded
        else:
            data, dangling = _q_decode(text), False
        key = _charset_key(label)
        if run and key != run_key:
            flush()
        run.append(data)
        run_charset, run_key = (label or None), key
        if dangling:
            flush()
            out.append("\ufffd")
        previous_was_word = True
        pos = match.end()
    flush()
    out.append(value[pos:])
    return "".join(out)


def decode_words(value: str) -> str:
    """Unfold a header value and decode its RFC 2047 encoded words.

    Lenient where mail is: words glued to surrounding text are decoded too, labels go
    through ``charsets.codec_for`` (so ``ks_c_5601-1987`` and ISO-2022-JP
    with NEC characters work) and an unknown charset is guessed (UTF-8, else
    windows-1252). A word that is not valid base64 stays as literal text; a truncated one
    decodes what it has and ends in U+FFFD.
    """
    if not isinstance(value, str):
        return ""
    if plain(value) and "=?" not in value and "\r" not in value and "\n" not in value:
        return value  # nothing to unfold or decode: most values of most mails
    try:
        return _decode_words(clean(value))
    except Exception:  # total by contract: fall back to the text as it came
        return no_surrogates(str(value))
