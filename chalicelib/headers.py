"""Mail header values to Unicode and structure; every function here is total.

Headers arrive broken in every way mail allows (8-bit bytes in undeclared charsets,
malformed RFC 2047 words, unterminated quotes), and one bad header must never cost us
the whole message, so nothing in this module raises: what cannot be understood is kept
as literal text, replaced by U+FFFD, or reported as absent (None / empty list).

Raw 8-bit header text: header bytes that were decoded with ``surrogateescape`` (as
Python's email package does with ``compat32``) come back here as lone surrogates
U+DC80..U+DCFF. Every function first turns such a value back into its bytes and
decodes them as UTF-8 when they are valid UTF-8, else as windows-1252 (the same guess
:func:`chalicelib.charsets.decode` makes for unlabelled bytes); other lone surrogates
become U+FFFD, so every string returned can be encoded as UTF-8. Raw 7-bit ISO-2022-JP
(``ESC $ B``) in a header, as old Japanese mailers send it, is decoded as such.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
import urllib.parse
from datetime import UTC, datetime, timedelta, timezone

from chalicelib import charsets

__all__ = [
    "attachment_filename",
    "clean_filename",
    "decode_header_pairs",
    "decode_words",
    "header_text",
    "parse_addresses",
    "parse_date",
    "parse_header_block",
    "parse_message_id",
    "split_header_block",
]

# ---------------------------------------------------------------------------------------------
# Shared clean-up


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_OTHER_SURROGATE = re.compile("[\ud800-\udc7f\udd00-\udfff]")
_FOLD = re.compile(r"(?:\r\n|\r|\n)(?=[ \t])")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _plain(value: str) -> bool:
    """7-bit text without ESC: no 8-bit byte to decode and no raw ISO-2022-JP, so it stays as it is."""
    return value.isascii() and "\x1b" not in value


def _restore_8bit(value: str) -> str:
    if value.isascii():
        if "\x1b$" in value:
            return charsets.decode(value.encode("ascii"), "iso-2022-jp")
        return value
    value = _OTHER_SURROGATE.sub("\ufffd", value)
    if not _ESCAPED_BYTE.search(value):
        return value
    # Re-encoding the whole value gives back the original bytes (whether it was decoded as
    # ASCII or as UTF-8 with surrogateescape), so a multi-byte character whose bytes were
    # partly ASCII (Shift_JIS trail bytes) is decoded whole.
    return charsets.decode(value.encode("utf-8", "surrogateescape"), None)


def _unfold(value: str) -> str:
    # RFC 5322 unfolding removes the line break before whitespace; a bare line break left
    # inside a value would glue two words together, so it becomes a space.
    return _LINE_BREAK.sub(" ", _FOLD.sub("", value))


def _clean(value: str) -> str:
    return _unfold(_restore_8bit(value))


# ---------------------------------------------------------------------------------------------
# RFC 2047

# Encoded text may not contain "?" or whitespace (RFC 2047 section 5), which also keeps the
# scan linear: each start scans only up to the next "?" or space.
_ENCODED_WORD = re.compile(r"=\?([^?\s]*+)\?([bBqQ])\?([^?\s]*+)\?=")
_LINEAR_WHITESPACE = " \t\r\n"
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
        if not (previous_was_word and not between.strip(_LINEAR_WHITESPACE)):
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
    through :func:`chalicelib.charsets.codec_for` (so ``ks_c_5601-1987`` and ISO-2022-JP
    with NEC characters work) and an unknown charset is guessed (UTF-8, else
    windows-1252). A word that is not valid base64 stays as literal text; a truncated one
    decodes what it has and ends in U+FFFD.
    """
    if not isinstance(value, str):
        return ""
    if _plain(value) and "=?" not in value and "\r" not in value and "\n" not in value:
        return value  # nothing to unfold or decode: most values of most mails
    try:
        return _decode_words(_clean(value))
    except Exception:  # total by contract: fall back to the text as it came
        return _OTHER_SURROGATE.sub("\ufffd", _ESCAPED_BYTE.sub("\ufffd", str(value)))


# ---------------------------------------------------------------------------------------------
# Header block

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
    # 7-bit without ESC: what the careful path below returns, at a tenth of its cost.
    if isinstance(value, str):
        if _plain(value):
            return value
    elif isinstance(value, bytes) and value.isascii() and b"\x1b" not in value:
        return value.decode("ascii")
    try:
        raw = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
        return _OTHER_SURROGATE.sub("\ufffd", _ESCAPED_BYTE.sub("\ufffd", _decode_raw(bytes(raw), charset)))
    except Exception:  # total by contract: a string with other lone surrogates, say
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        return _OTHER_SURROGATE.sub("\ufffd", _ESCAPED_BYTE.sub("\ufffd", text))


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

    The same lines as :func:`parse_header_block` reads (LF, CRLF or CR line ends; lines
    that are not a header skipped with their continuations; an empty line ends the
    block), for callers that must parse a value's structure before decoding its words,
    as an address list must.
    """
    try:
        return _split_header_block(bytes(block))
    except Exception:  # total by contract
        return []


def parse_header_block(block: bytes, charset: str | None = None) -> list[tuple[str, str]]:
    """Ordered (name, value) pairs of a raw header block such as SendGrid's ``headers`` field.

    Lines end in LF, CRLF or CR. Names are kept as written; values are unfolded,
    RFC 2047-decoded and stripped of surrounding whitespace. Raw 8-bit values are read as
    UTF-8 when valid, else in `charset` (windows-1252 when None). Lines that are not a
    ``name: value`` header (no colon, or a name with spaces such as an mbox ``From `` line)
    are skipped together with their continuation lines, and continuation lines before the
    first header are skipped. An empty line ends the block.
    """
    return decode_header_pairs(split_header_block(block), charset)


def decode_header_pairs(pairs: list[tuple[str, bytes]], charset: str | None = None) -> list[tuple[str, str]]:
    """:func:`split_header_block`'s pairs decoded as :func:`parse_header_block` decodes them."""
    try:
        return [(name, decode_words(header_text(value, charset)).strip(_LINEAR_WHITESPACE)) for name, value in pairs]
    except Exception:  # total by contract
        return []


# ---------------------------------------------------------------------------------------------
# Addresses


def _getaddresses_or_none(value: str) -> list[tuple[str, str]]:
    try:
        return email.utils.getaddresses([value])
    except Exception:  # e.g. RecursionError on deeply nested groups
        return []


# The shape nearly every address list has: `Name <a@b>` or a bare `a@b`, comma
# separated. Read with one regular expression it costs a microsecond, against
# some thirteen for the email package's parser (bench/); anything else still
# goes through the email package. tests/test_headers.py pins that both agree.
_ATOM = r"[A-Za-z0-9_'-]+"
_DOT_ATOM = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
_DOMAIN = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE_ADDRESS = re.compile(
    rf"\s*(?:({_ATOM}(?: {_ATOM})*) <({_DOT_ATOM}@{_DOMAIN})>|<({_DOT_ATOM}@{_DOMAIN})>|({_DOT_ATOM}@{_DOMAIN}))\s*"
)


def _getaddresses(value: str) -> list[tuple[str, str]]:
    simple = [_SIMPLE_ADDRESS.fullmatch(part) for part in value.split(",")]
    if all(simple):
        return [(match[1] or "", match[2] or match[3] or match[4]) for match in simple if match is not None]
    try:
        return email.utils.getaddresses([value])
    except Exception:
        # Salvage entry by entry: one hopeless entry must not cost the others.
        return [pair for chunk in value.split(",") for pair in _getaddresses_or_none(chunk)]


def _parse_addresses(value: str) -> list[dict[str, str]]:
    result: list[dict[str, str]] = []
    # Parse first and decode the names after: a decoded name may contain commas, quotes or "@".
    for raw_name, raw_address in _getaddresses(_clean(value)):
        name = decode_words(raw_name).strip()
        address = raw_address.strip()
        if name or address:
            result.append({"name": name, "address": address})
    return result


def parse_addresses(value: str) -> list[dict[str, str]]:
    """``[{"name": ..., "address": ...}]`` from an address-list header value.

    Groups are flattened to their members (an empty group such as
    ``undisclosed-recipients:;`` yields nothing), display names are RFC 2047-decoded,
    a comment stands in for a missing display name (``a@b (Alice)``), and entries with
    neither name nor address are dropped. Addresses are returned as parsed, not validated.
    """
    if not isinstance(value, str):
        return []
    try:
        return _parse_addresses(value)
    except Exception:  # total by contract
        return []


# ---------------------------------------------------------------------------------------------
# Dates

# Zone names mailers still write that email.utils does not know (it knows UT, GMT, Z and
# the North American ones). Ambiguous names such as IST are left out on purpose.
_ZONE_NAMES = {
    "JST": "+0900",
    "KST": "+0900",
    "HKT": "+0800",
    "SGT": "+0800",
    "AWST": "+0800",
    "ACST": "+0930",
    "AEST": "+1000",
    "AEDT": "+1100",
    "NZST": "+1200",
    "NZDT": "+1300",
    "WET": "+0000",
    "WEST": "+0100",
    "BST": "+0100",
    "CET": "+0100",
    "MET": "+0100",
    "CEST": "+0200",
    "MEST": "+0200",
    "EET": "+0200",
    "EEST": "+0300",
    "MSK": "+0300",
    "HST": "-1000",
    "AKST": "-0900",
    "AKDT": "-0800",
}
_TRAILING_ZONE_NAME = re.compile(r"\s\(?([A-Za-z]{2,5})\)?\s*$")
_NUMERIC_ZONE = re.compile(r"[+-]\d{4}\b")


_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
# RFC 5322's own form, which nearly every mailer writes: read without email.utils (a fifth of its
# cost). Years from 1000 only: email.utils reads 0000-0099 as 19xx or 20xx.
_RFC5322_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"([1-9][0-9]{3}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"
)


def _iso(year: int, month: int, day: int, hour: int, minute: int, second: int, offset: int) -> str:
    # A leap second is kept in its minute; an impossible field raises (parse_date answers None).
    moment = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=timezone(timedelta(seconds=offset)))
    return moment.isoformat()


def _parse_date(value: str) -> str | None:
    plain = _RFC5322_DATE.fullmatch(value)
    if plain is not None:
        day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = plain.groups()
        offset = (int(zone_hours) * 3600 + int(zone_minutes) * 60) * (-1 if sign == "-" else 1)
        return _iso(int(year), _MONTHS[month.lower()], int(day), int(hour), int(minute), int(second), offset)
    return _parse_date_carefully(value)


def _parse_date_carefully(value: str) -> str | None:
    text = _clean(value).strip()
    if not text:
        return None
    zone = _TRAILING_ZONE_NAME.search(text)
    if zone and zone.group(1).upper() in _ZONE_NAMES and not _NUMERIC_ZONE.search(text):
        text = f"{text[: zone.start()]} {_ZONE_NAMES[zone.group(1).upper()]}"
    parsed = email.utils.parsedate_tz(text)
    if parsed is None:
        # Some gateways write ISO 8601 into Date:.
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.isoformat()
    year, month, day, hour, minute, second = parsed[:6]
    return _iso(year, month, day, hour, minute, second, parsed[9] or 0)  # no zone and -0000 both count as UTC


def parse_date(value: str | None) -> str | None:
    """ISO 8601 with offset from an RFC 5322 date (``2013-09-25T18:16:53+09:00``), or None.

    Accepts the obsolete and broken forms email.utils does (two-digit years, missing day
    name or seconds, dotted times, trailing comments), common zone names such as JST or
    CET, and ISO 8601 itself. A missing zone or ``-0000`` gives ``+00:00``; an impossible
    date or offset gives None.
    """
    if not isinstance(value, str):
        return None
    try:
        return _parse_date(value)
    except Exception:  # total by contract: out-of-range fields, odd tuples
        return None


# ---------------------------------------------------------------------------------------------
# Message-ID

_ANGLE_ID = re.compile(r"<([^<>]*)>")


def _parse_message_id(value: str) -> str | None:
    text = _clean(value)
    for match in _ANGLE_ID.finditer(text):
        # Broken mailers fold inside the brackets; an id never contains whitespace.
        inner = "".join(match.group(1).split())
        if inner:
            return f"<{inner}>"
    tokens = text.replace("<", " ").replace(">", " ").split()
    return f"<{tokens[0]}>" if tokens else None


def parse_message_id(value: str | None) -> str | None:
    """The first ``<id>`` of the value with whitespace removed; a bare id gets its brackets; empty: None."""
    if not isinstance(value, str):
        return None
    try:
        return _parse_message_id(value)
    except Exception:  # total by contract
        return None


# ---------------------------------------------------------------------------------------------
# Attachment file names

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
        cleaned = _OTHER_SURROGATE.sub("\ufffd", _ESCAPED_BYTE.sub("\ufffd", name))
        cleaned = cleaned.translate(_UNSAFE_IN_NAME).strip()
    except Exception:  # total by contract
        return None
    return cleaned or None


def _attachment_filename(disposition: str | None, content_type: str | None) -> str | None:
    for header, wanted in ((disposition, "filename"), (content_type, "name")):
        if not isinstance(header, str):
            continue
        for candidate in _candidates(_parameters(_clean(header)), wanted):
            name = clean_filename(candidate)
            if name:
                return name
    return None


def attachment_filename(disposition: str | None, content_type: str | None) -> str | None:
    """The file name a sender gave a part, or None.

    From Content-Disposition ``filename*`` (RFC 2231/6266), ``filename*0*``/``filename*1``...
    continuations (charset from the first segment, any charset :mod:`chalicelib.charsets`
    knows) or ``filename``, else the same from the Content-Type ``name`` parameter; RFC 2047
    words in plain values are decoded. The name is returned as written (paths included: it
    is data, never a path for us) minus control characters and bidi overrides, with
    surrounding whitespace stripped.
    """
    try:
        return _attachment_filename(disposition, content_type)
    except Exception:  # total by contract
        return None
