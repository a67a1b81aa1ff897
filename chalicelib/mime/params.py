"""MIME parameters (RFC 2045, RFC 2231 and the forms in the wild): a part's file name; total, as mail needs."""

from __future__ import annotations

import re
import urllib.parse

from chalicelib.mime import charsets
from chalicelib.mime.text import clean, no_surrogates
from chalicelib.mime.words import decode_words

__all__ = ["attachment_filename", "clean_filename"]


# One parameter at a time: a name, then a quoted string (possibly unterminated) or a token up
# to the next ";". Possessive loops keep a stray backslash or quote from backtracking.
_PARAMETER = re.compile(
    r"""\s*(?P<name>[^=;]*)
        (?:=\s*(?:"(?P<quoted>(?:[^"\\]++|\\.)*+)(?:"|\\?$)|(?P<token>[^;]*)))?
        [^;]*(?:;|$)""",
    re.VERBOSE | re.DOTALL,
)
_QUOTED_PAIR = re.compile(r'\\(["\\])')
_CONTINUATION = re.compile(r"(?P<base>[^*]+)\*(?P<index>\d{1,4})(?P<extended>\*?)")
# C0, DEL and C1 controls, and the bidi embedding/override/isolate controls that can make
# "invoice\u202Efdp.exe" display as "invoiceexe.pdf".
_UNSAFE_IN_NAME = dict.fromkeys(
    [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


def _parameters(header: str) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    pos = 0
    while pos < len(header):
        match = _PARAMETER.match(header, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
        name = match.group("name").strip().lower()
        quoted, token = match.group("quoted"), match.group("token")
        if not name or (quoted is None and token is None):
            continue  # the disposition / media type itself, or junk
        # Only \" and \\ are unescaped: Windows paths arrive with bare backslashes.
        params.append((name, _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else token.strip()))
    return params


def _rfc2231(segments: list[tuple[str, bool]]) -> str:
    charset: str | None = None
    chunks: list[bytes] = []
    for position, (value, extended) in enumerate(segments):
        if not extended:
            chunks.append(value.encode("utf-8"))
            continue
        encoded = value
        if position == 0:
            parts = value.split("'", 2)
            if len(parts) == 3:
                charset, encoded = parts[0] or None, parts[2]
        chunks.append(urllib.parse.unquote_to_bytes(encoded))
    text = charsets.decode(b"".join(chunks), charset)
    if not any(extended for _, extended in segments):
        text = decode_words(text)  # continuations of a plain value that carried RFC 2047 words
    return text


def _candidates(params: list[tuple[str, str]], wanted: str) -> list[str]:
    extended: str | None = None
    plain: str | None = None
    segments: dict[int, tuple[str, bool]] = {}
    for name, value in params:
        if name == wanted + "*":
            extended = value if extended is None else extended
        elif name == wanted:
            plain = value if plain is None else plain
        else:
            continuation = _CONTINUATION.fullmatch(name)
            if continuation and continuation.group("base") == wanted:
                segments.setdefault(
                    int(continuation.group("index")), (value, bool(continuation.group("extended")))
                )
    found: list[str] = []
    # RFC 6266: the extended form wins over the plain one when a sender gives both.
    if extended is not None:
        found.append(_rfc2231([(extended, True)]))
    if segments:
        found.append(_rfc2231([segments[index] for index in sorted(segments)]))
    if plain is not None:
        found.append(decode_words(plain))  # Outlook: filename="=?utf-8?B?...?="
    return found


def clean_filename(name: object) -> str | None:
    """A file name as given, minus control characters, bidi overrides and surrounding whitespace; None when empty.

    The name stays data: ``..`` or ``C:\\x\\y.exe`` come back as written, for a reader to
    show, and are never used as a path by this service.
    """
    if not isinstance(name, str):
        return None
    try:
        cleaned = no_surrogates(name).translate(_UNSAFE_IN_NAME).strip()
    except Exception:  # total by contract
        return None
    return cleaned or None


def _attachment_filename(disposition: str | None, content_type: str | None) -> str | None:
    for header, wanted in ((disposition, "filename"), (content_type, "name")):
        if not isinstance(header, str):
            continue
        for candidate in _candidates(_parameters(clean(header)), wanted):
            name = clean_filename(candidate)
            if name:
                return name
    return None


def attachment_filename(disposition: str | None, content_type: str | None) -> str | None:
    """The file name a sender gave a part, or None.

    From Content-Disposition ``filename*`` (RFC 2231/6266), ``filename*0*``/``filename*1``...
    continuations (charset from the first segment, any charset ``charsets``
    knows) or ``filename``, else the same from the Content-Type ``name`` parameter; RFC 2047
    words in plain values are decoded. The name is returned as written (paths included: it
    is data, never a path for us) minus control characters and bidi overrides, with
    surrounding whitespace stripped.
    """
    try:
        return _attachment_filename(disposition, content_type)
    except Exception:  # total by contract
        return None
