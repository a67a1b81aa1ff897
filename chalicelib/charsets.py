"""Turn mail bytes and the charset label they came with into text, never raising.

Labels are resolved the way browsers resolve them (the WHATWG Encoding
Standard), because mail clients copy the same Windows-centric habits: a
message labelled ``iso-8859-1`` or ``us-ascii`` is routinely windows-1252, one
labelled ``Shift_JIS`` is CP932, one labelled ``euc-kr`` is UHC. Decoding
follows the WHATWG decoders too: undecodable bytes become U+FFFD, a byte order
mark overrides the label.

Japanese is mapped through CP932 throughout (Shift_JIS, ISO-2022-JP and EUC-JP
alike) so that the same text sent in any of the three comes out as the same
string. In particular JIS 0x2141 comes out as U+FF5E FULLWIDTH TILDE (what
Windows and browsers produce), not U+301C WAVE DASH (what Python's
``shift_jis``/``euc_jp``/``iso2022_jp`` codecs produce); likewise U+2225,
U+FF0D, U+FFE0, U+FFE1 and U+FFE2 for the other JIS X 0208 characters whose
mapping differs between the two traditions.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Callable

__all__ = ["WHATWG_LABELS", "codec_for", "decode", "html_meta_charset"]

# The label table of the WHATWG Encoding Standard (https://encoding.spec.whatwg.org/#names-and-labels),
# keyed by the standard's encoding name.
WHATWG_LABELS: dict[str, tuple[str, ...]] = {
    "UTF-8": ("unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8", "x-unicode20utf8"),
    "IBM866": ("866", "cp866", "csibm866", "ibm866"),
    "ISO-8859-2": (
        "csisolatin2", "iso-8859-2", "iso-ir-101", "iso8859-2", "iso88592", "iso_8859-2",
        "iso_8859-2:1987", "l2", "latin2",
    ),
    "ISO-8859-3": (
        "csisolatin3", "iso-8859-3", "iso-ir-109", "iso8859-3", "iso88593", "iso_8859-3",
        "iso_8859-3:1988", "l3", "latin3",
    ),
    "ISO-8859-4": (
        "csisolatin4", "iso-8859-4", "iso-ir-110", "iso8859-4", "iso88594", "iso_8859-4",
        "iso_8859-4:1988", "l4", "latin4",
    ),
    "ISO-8859-5": (
        "csisolatincyrillic", "cyrillic", "iso-8859-5", "iso-ir-144", "iso8859-5", "iso88595",
        "iso_8859-5", "iso_8859-5:1988",
    ),
    "ISO-8859-6": (
        "arabic", "asmo-708", "csiso88596e", "csiso88596i", "csisolatinarabic", "ecma-114",
        "iso-8859-6", "iso-8859-6-e", "iso-8859-6-i", "iso-ir-127", "iso8859-6", "iso88596",
        "iso_8859-6", "iso_8859-6:1987",
    ),
    "ISO-8859-7": (
        "csisolatingreek", "ecma-118", "elot_928", "greek", "greek8", "iso-8859-7", "iso-ir-126",
        "iso8859-7", "iso88597", "iso_8859-7", "iso_8859-7:1987", "sun_eu_greek",
    ),
    "ISO-8859-8": (
        "csiso88598e", "csisolatinhebrew", "hebrew", "iso-8859-8", "iso-8859-8-e", "iso-ir-138",
        "iso8859-8", "iso88598", "iso_8859-8", "iso_8859-8:1988", "visual",
    ),
    "ISO-8859-8-I": ("csiso88598i", "iso-8859-8-i", "logical"),
    "ISO-8859-10": ("csisolatin6", "iso-8859-10", "iso-ir-157", "iso8859-10", "iso885910", "l6", "latin6"),
    "ISO-8859-13": ("iso-8859-13", "iso8859-13", "iso885913"),
    "ISO-8859-14": ("iso-8859-14", "iso8859-14", "iso885914"),
    "ISO-8859-15": ("csisolatin9", "iso-8859-15", "iso8859-15", "iso885915", "iso_8859-15", "l9"),
    "ISO-8859-16": ("iso-8859-16",),
    "KOI8-R": ("cskoi8r", "koi", "koi8", "koi8-r", "koi8_r"),
    "KOI8-U": ("koi8-ru", "koi8-u"),
    "macintosh": ("csmacintosh", "mac", "macintosh", "x-mac-roman"),
    "windows-874": ("dos-874", "iso-8859-11", "iso8859-11", "iso885911", "tis-620", "windows-874"),
    "windows-1250": ("cp1250", "windows-1250", "x-cp1250"),
    "windows-1251": ("cp1251", "windows-1251", "x-cp1251"),
    "windows-1252": (
        "ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819", "iso-8859-1",
        "iso-ir-100", "iso8859-1", "iso88591", "iso_8859-1", "iso_8859-1:1987", "l1", "latin1",
        "us-ascii", "windows-1252", "x-cp1252",
    ),
    "windows-1253": ("cp1253", "windows-1253", "x-cp1253"),
    "windows-1254": (
        "cp1254", "csisolatin5", "iso-8859-9", "iso-ir-148", "iso8859-9", "iso88599", "iso_8859-9",
        "iso_8859-9:1989", "l5", "latin5", "windows-1254", "x-cp1254",
    ),
    "windows-1255": ("cp1255", "windows-1255", "x-cp1255"),
    "windows-1256": ("cp1256", "windows-1256", "x-cp1256"),
    "windows-1257": ("cp1257", "windows-1257", "x-cp1257"),
    "windows-1258": ("cp1258", "windows-1258", "x-cp1258"),
    "x-mac-cyrillic": ("x-mac-cyrillic", "x-mac-ukrainian"),
    "GBK": (
        "chinese", "csgb2312", "csiso58gb231280", "gb2312", "gb_2312", "gb_2312-80", "gbk", "iso-ir-58",
        "x-gbk",
    ),
    "gb18030": ("gb18030",),
    "Big5": ("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5"),
    "EUC-JP": ("cseucpkdfmtjapanese", "euc-jp", "x-euc-jp"),
    "ISO-2022-JP": ("csiso2022jp", "iso-2022-jp"),
    "Shift_JIS": (
        "csshiftjis", "ms932", "ms_kanji", "shift-jis", "shift_jis", "sjis", "windows-31j", "x-sjis",
    ),
    "EUC-KR": (
        "cseuckr", "csksc56011987", "euc-kr", "iso-ir-149", "korean", "ks_c_5601-1987",
        "ks_c_5601-1989", "ksc5601", "ksc_5601", "windows-949",
    ),
    "replacement": (
        "csiso2022kr", "hz-gb-2312", "iso-2022-cn", "iso-2022-cn-ext", "iso-2022-kr", "replacement",
    ),
    "UTF-16BE": ("unicodefffe", "utf-16be"),
    "UTF-16LE": ("csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff", "utf-16", "utf-16le"),
    "x-user-defined": ("x-user-defined",),
}

# The Python codec whose decoder behaves like each WHATWG decoder. None: decode() guesses.
_PYTHON_CODEC: dict[str, str | None] = {
    "UTF-8": "utf-8",
    "IBM866": "cp866",
    "ISO-8859-2": "iso8859-2",
    "ISO-8859-3": "iso8859-3",
    "ISO-8859-4": "iso8859-4",
    "ISO-8859-5": "iso8859-5",
    "ISO-8859-6": "iso8859-6",
    "ISO-8859-7": "iso8859-7",
    "ISO-8859-8": "iso8859-8",
    "ISO-8859-8-I": "iso8859-8",  # logical vs visual order is a rendering matter, the bytes are the same
    "ISO-8859-10": "iso8859-10",
    "ISO-8859-13": "iso8859-13",
    "ISO-8859-14": "iso8859-14",
    "ISO-8859-15": "iso8859-15",
    "ISO-8859-16": "iso8859-16",
    "KOI8-R": "koi8-r",
    "KOI8-U": "koi8-u",  # WHATWG's KOI8-U is KOI8-RU; decode() patches the two bytes that differ
    "macintosh": "mac-roman",
    "windows-874": "cp874",
    "windows-1250": "cp1250",
    "windows-1251": "cp1251",
    "windows-1252": "cp1252",
    "windows-1253": "cp1253",
    "windows-1254": "cp1254",
    "windows-1255": "cp1255",
    "windows-1256": "cp1256",
    "windows-1257": "cp1257",
    "windows-1258": "cp1258",
    "x-mac-cyrillic": "mac-cyrillic",
    "GBK": "gb18030",  # the WHATWG GBK decoder is the gb18030 decoder
    "gb18030": "gb18030",
    "Big5": "big5hkscs",
    "EUC-JP": "euc_jp",  # decoded through CP932 for JIS X 0208, see decode()
    "ISO-2022-JP": "iso2022_jp",  # decoded by our own CP50220-like walker, see decode()
    "Shift_JIS": "cp932",
    "EUC-KR": "cp949",
    "replacement": None,  # overridden per label below
    "UTF-16BE": "utf-16-be",
    "UTF-16LE": "utf-16-le",
    # A private byte->PUA mapping for binary smuggled through text: meaningless for mail,
    # so we would rather guess.
    "x-user-defined": None,
}

# WHATWG turns these into a single U+FFFD to stop cross-site scripting in browsers. Mail is
# stored as data, not rendered as HTML by us, and ISO-2022-KR is *the* RFC 1557 mail charset
# for Korean, so decode them where Python has a decoder.
_REPLACEMENT_OVERRIDES: dict[str, str | None] = {
    "csiso2022kr": "iso2022_kr",
    "iso-2022-kr": "iso2022_kr",
    "hz-gb-2312": "hz",
}

# Labels seen in mail but absent from the WHATWG table, or that Python would resolve
# differently from what Windows mailers meant by them.
_MAIL_LABELS: dict[str, str | None] = {
    "iso-2022-jp-ms": "iso2022_jp",
    "cp50220": "iso2022_jp",
    "cp50221": "iso2022_jp",
    "cp50222": "iso2022_jp",
    "cswindows31j": "cp932",
    "windows-932": "cp932",
    "cp943c": "cp932",
    "cp51932": "euc_jp",
    "eucjp-ms": "euc_jp",
    "euc-jp-ms": "euc_jp",
    "eucjp-win": "euc_jp",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "ms949": "cp949",
    "uhc": "cp949",
    "ks_c_5601": "cp949",
    "ms950": "cp950",
    "windows-950": "cp950",
    "unknown-8bit": None,
    "x-unknown": None,
    "unknown": None,
}

# What a label that only Python knows should become, by Python codec name, when WHATWG
# (and the mailers it describes) decode the same thing with a superset.
_PYTHON_UPGRADE: dict[str, str] = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "utf-8-sig": "utf-8",
    "utf-16": "utf-16-le",
}

# Python codecs that are not character sets, or that cannot decode anything.
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined", "charmap", "mbcs", "oem"}
)


def _strip_label(label: str) -> str:
    return label.strip().strip("\"'").strip().lower()


def _squash(label: str) -> str:
    # Mail and Windows spell the same label with any punctuation (ISO_8859-1, ISO8859-1, UTF_8,
    # windows1251), so compare labels by their letters and digits alone.
    return re.sub(r"[^a-z0-9]", "", label)


def _build_tables() -> tuple[dict[str, str | None], dict[str, str | None]]:
    exact: dict[str, str | None] = {}
    for encoding, labels in WHATWG_LABELS.items():
        for label in labels:
            exact[label] = _PYTHON_CODEC[encoding]
    exact.update(_REPLACEMENT_OVERRIDES)
    exact.update(_MAIL_LABELS)
    squashed: dict[str, str | None] = {}
    for label, codec in exact.items():
        squashed.setdefault(_squash(label), codec)
    return exact, squashed


_EXACT, _SQUASHED = _build_tables()
_PYTHON_LABEL = re.compile(r"[a-z0-9][a-z0-9._:+-]{0,39}")


def _python_codec(label: str) -> str | None:
    for candidate in (label, _squash(label)):
        if not _PYTHON_LABEL.fullmatch(candidate):
            continue
        try:
            info = codecs.lookup(candidate)
        except Exception:  # LookupError, but odd names can make the encodings package raise others
            info = None
        if info is None:
            continue
        if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
            return None
        return _PYTHON_UPGRADE.get(info.name, info.name)
    return None


@functools.lru_cache(maxsize=512)
def _resolve(label: str) -> str | None:
    cleaned = _strip_label(label)
    if not cleaned:
        return None
    if cleaned in _EXACT:
        return _EXACT[cleaned]
    squashed = _squash(cleaned)
    if squashed in _SQUASHED:
        return _SQUASHED[squashed]
    return _python_codec(cleaned)


def codec_for(label: str | None) -> str | None:
    """The Python codec name for a charset label as found in mail, or None when it names nothing we know.

    Resolution: the WHATWG label table (with punctuation-insensitive matching), a few
    mail-only labels, then Python's own codec registry. ``x-user-defined``, ``replacement``
    (except ISO-2022-KR and HZ, which Python decodes) and unknown labels give None.
    """
    if not isinstance(label, str):
        return None
    try:
        return _resolve(label)
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------
# Error handlers. Registered under our own names so they cannot clash with anyone else's.


def _pair_error(exc: UnicodeError) -> tuple[str, int]:
    # Input built from whole JIS pairs: an undefined pair is one character gone, and its
    # trail byte must not resurface as ASCII the way cp932's own 'replace' lets it.
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "\ufffd", min(len(exc.object), max(exc.end, exc.start + 2))


def _eucjp_error(exc: UnicodeError) -> tuple[str, int]:
    # Python's euc_jp lacks the NEC and IBM extension rows that eucJP-ms and browsers decode
    # (①, ㈱, Ⅰ ...): take such a pair through its Shift_JIS form and CP932.
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    obj = exc.object
    start = exc.start
    if start + 1 < len(obj) and 0xA1 <= obj[start] <= 0xFE and 0xA1 <= obj[start + 1] <= 0xFE:
        return _jis0208_to_text(bytes((obj[start] & 0x7F, obj[start + 1] & 0x7F))), start + 2
    return "\ufffd", max(exc.end, start + 1)


_PAIR = "chalicelib.charsets.pair"
_EUCJP = "chalicelib.charsets.eucjp"
codecs.register_error(_PAIR, _pair_error)
codecs.register_error(_EUCJP, _eucjp_error)

# ---------------------------------------------------------------------------------------------
# JIS X 0208 -> Shift_JIS, so that CP932 (with its NEC and IBM rows) does the mapping.


def _sjis_lead(j1: int) -> int:
    s1 = ((j1 - 0x21) >> 1) + 0x81
    return s1 + 0x40 if s1 > 0x9F else s1


def _sjis_trail(marked: int) -> int:
    # `marked` is the JIS trail byte with bit 7 set when the lead (row) is even.
    j2 = marked & 0x7F
    if marked & 0x80:
        return j2 + 0x7E
    return j2 + 0x1F + (1 if j2 >= 0x60 else 0)


_SJIS_LEAD = bytes(_sjis_lead(b) if 0x21 <= b <= 0x7E else 0 for b in range(256))
_SJIS_TRAIL = bytes(
    _sjis_trail(b) if (0x21 <= b <= 0x7E or 0xA1 <= b <= 0xFE) else 0 for b in range(256)
)
_EVEN_ROW_MARK = bytes(0x80 if b % 2 == 0 else 0 for b in range(256))
_HIGH_BIT = bytes(b | 0x80 for b in range(256))


def _jis0208_to_text(pairs: bytes) -> str:
    """Decode a run of whole JIS X 0208 byte pairs (0x21-0x7E each) via Shift_JIS and CP932."""
    leads = pairs[0::2]
    trails = pairs[1::2]
    # The Shift_JIS trail depends on both bytes (the row's parity picks the range). Fold the
    # parity into bit 7 of each trail with one big-integer OR, so a single translate() can do
    # the whole run at C speed instead of a Python loop per character.
    marks = leads.translate(_EVEN_ROW_MARK)
    merged = (int.from_bytes(trails, "big") | int.from_bytes(marks, "big")).to_bytes(len(trails), "big")
    sjis = bytearray(len(leads) * 2)
    sjis[0::2] = leads.translate(_SJIS_LEAD)
    sjis[1::2] = merged.translate(_SJIS_TRAIL)
    return sjis.decode("cp932", _PAIR)


def _jis0212_to_text(pairs: bytes) -> str:
    euc = bytearray(len(pairs) // 2 * 3)
    euc[0::3] = b"\x8f" * (len(pairs) // 2)
    euc[1::3] = pairs[0::2].translate(_HIGH_BIT)
    euc[2::3] = pairs[1::2].translate(_HIGH_BIT)
    return euc.decode("euc_jp", "replace").translate(_TO_CP932_FORMS)


# Where Python's JIS-based codecs and CP932 disagree about the same JIS X 0208 character.
_TO_CP932_FORMS = str.maketrans(
    {
        "\u301c": "\uff5e",
        "\u2016": "\u2225",
        "\u2212": "\uff0d",
        "\u00a2": "\uffe0",
        "\u00a3": "\uffe1",
        "\u00ac": "\uffe2",
    }
)

# ---------------------------------------------------------------------------------------------
# ISO-2022-JP (CP50220-like): escape sequences switch between ASCII, JIS X 0208, half-width
# katakana and JIS X 0212.

_ASCII, _KANA, _JIS0208, _JIS0212 = range(4)
_JIS_SHIFT = re.compile(rb"\x1b(\(B|\(J|\(H|\(I|\$@|\$B|\$\(@|\$\(B|\$\(D|&@)|\x0e|\x0f")
_ESCAPE_MODE = {
    b"(B": _ASCII,
    # JIS-Roman differs from ASCII only in ¥ and ‾ at 0x5C/0x7E, but Japanese mailers used
    # ESC ( J as their "back to ASCII" and wrote URLs and paths after it: keep \ and ~.
    b"(J": _ASCII,
    b"(H": _ASCII,  # a misregistered JIS-Roman that old mailers still send
    b"(I": _KANA,
    b"$@": _JIS0208,
    b"$B": _JIS0208,
    b"$(@": _JIS0208,
    b"$(B": _JIS0208,
    b"$(D": _JIS0212,
}
_DOUBLE_BYTE_PIECES = re.compile(rb"([\x21-\x7e]+)|([\x80-\xff]+)|(.)", re.DOTALL)
_KANA_TABLE = str.maketrans(
    {
        **{b: 0xFF61 + b - 0x21 for b in range(0x21, 0x60)},
        **{b: 0xFF61 + b - 0xA1 for b in range(0xA1, 0xE0)},  # 8-bit katakana in the same mode
        **{b: 0xFFFD for b in (0x1B, *range(0x60, 0xA1), *range(0xE0, 0x100))},
    }
)


def _stray_eight_bit(run: bytes) -> str:
    # ISO-2022-JP is 7-bit; high bytes in it are a mislabelled part, most often UTF-8 or Shift_JIS.
    try:
        return run.decode("utf-8")
    except UnicodeDecodeError:
        return run.decode("cp932", "replace")


def _ascii_piece(piece: bytes) -> str:
    # Decode a non-ASCII piece whole: Shift_JIS trail bytes are often ASCII bytes.
    text = piece.decode("ascii") if piece.isascii() else _stray_eight_bit(piece)
    return text.replace("\x1b", "\ufffd")


def _double_byte_piece(piece: bytes, pairs_to_text: Callable[[bytes], str]) -> str:
    out: list[str] = []
    for match in _DOUBLE_BYTE_PIECES.finditer(piece):
        graphic, high, single = match.groups()
        if graphic is not None:
            whole = len(graphic) & ~1
            if whole:
                out.append(pairs_to_text(graphic[:whole]))
            if whole < len(graphic):
                out.append("\ufffd")  # half a character before a control or the end
        elif high is not None:
            out.append(_stray_eight_bit(high))
        else:
            # Controls (CR, LF, TAB, space) pass through without leaving the mode, as in Python's
            # codec; a stray ESC is an escape sequence we do not know.
            byte = single[0]
            out.append("\ufffd" if byte in (0x1B, 0x7F) else chr(byte))
    return "".join(out)


def _decode_piece(piece: bytes, mode: int) -> str:
    if mode == _ASCII:
        return _ascii_piece(piece)
    if mode == _KANA:
        return piece.decode("latin-1").translate(_KANA_TABLE)
    if mode == _JIS0208:
        return _double_byte_piece(piece, _jis0208_to_text)
    return _double_byte_piece(piece, _jis0212_to_text)


# Python's C codec gives the walk's text for the usual message, one that
# switches only between ESC $ B and ESC ( B, with no shifts and no DEL, but
# for the six JIS X 0208 characters it maps the JIS way; it refuses the NEC and
# IBM rows, and passes stray escapes through. So it goes first where it is
# exact, at a fraction of the walk's cost per escape (bench/, and the
# agreement is pinned in tests/test_charsets.py); anything else is walked.
_JIS_TO_CP932 = (
    ("\u301c", "\uff5e"), ("\u2016", "\u2225"), ("\u2212", "\uff0d"), ("\u00a2", "\uffe0"),
    ("\u00a3", "\uffe1"), ("\u00ac", "\uffe2"),
)


def _jis_to_cp932(text: str) -> str:
    # Six searches and, rarely, a replace: str.translate with a table looks up
    # every character and took over half of a Japanese mail's time (bench/).
    for jis, cp932 in _JIS_TO_CP932:
        if jis in text:
            text = text.replace(jis, cp932)
    return text


def _decode_iso2022jp(data: bytes) -> str:
    if (
        data.count(b"\x1b") == data.count(b"\x1b$B") + data.count(b"\x1b(B")
        and b"\x0e" not in data
        and b"\x0f" not in data
        and b"\x7f" not in data
    ):
        try:
            return _jis_to_cp932(data.decode("iso2022_jp"))
        except UnicodeDecodeError:
            pass  # an NEC or IBM character, a half character, an 8-bit byte: walked below
    return _walk_iso2022jp(data)


def _walk_iso2022jp(data: bytes) -> str:
    """Walk ISO-2022-JP the way Windows' CP50220 does: JIS X 0208 through CP932 (NEC/IBM rows)."""
    out: list[str] = []
    mode = _ASCII
    mode_before_shift_out = _ASCII
    pos = 0
    for match in _JIS_SHIFT.finditer(data):
        if match.start() > pos:
            out.append(_decode_piece(data[pos : match.start()], mode))
        token = match.group(0)
        if token == b"\x0e":
            if mode != _KANA:
                mode_before_shift_out = mode
            mode = _KANA
        elif token == b"\x0f":
            if mode == _KANA:
                mode = mode_before_shift_out
        else:
            mode = _ESCAPE_MODE.get(match.group(1), mode)
        pos = match.end()
    if pos < len(data):
        out.append(_decode_piece(data[pos:], mode))
    return "".join(out)


# ---------------------------------------------------------------------------------------------

_UTF8_BOM = b"\xef\xbb\xbf"


def _windows_table(codec: str) -> str:
    # The WHATWG windows-* indexes map the bytes Python's cp125x leave undefined (0x81, 0x8D,
    # 0x8F, 0x90, 0x9D in cp1252) to the C1 control with the same number, as Windows does.
    # A complete 256-entry table also lets charmap_decode run without any error callback.
    chars = []
    for byte in range(256):
        try:
            chars.append(bytes([byte]).decode(codec))
        except UnicodeDecodeError:
            chars.append(chr(byte) if 0x80 <= byte <= 0x9F else "\ufffd")
    return "".join(chars)


_WINDOWS_TABLES = {codec: _windows_table(codec) for codec in ("cp874", *(f"cp{n}" for n in range(1250, 1259)))}
# Codecs of our own tables, none of which can produce a lone surrogate.
_CLEAN_OUTPUT = frozenset(codec for codec in _EXACT.values() if codec is not None)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_KOI8_RU = str.maketrans({"\u255d": "\u045e", "\u256c": "\u040e"})
_ISO2022JP_PYTHON_FIRST = frozenset(
    {"iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3", "iso2022_jp_ext"}
)


def _guess(data: bytes) -> str:
    """Bytes labelled with nothing useful: UTF-8 if they are valid UTF-8, else windows-1252."""
    if data.isascii():
        # 7-bit Japanese mail that lost its charset (RFC 2045 then says us-ascii) is ISO-2022-JP.
        if b"\x1b$" in data:
            return _decode_iso2022jp(data)
        return data.decode("ascii")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return codecs.charmap_decode(data, "strict", _WINDOWS_TABLES["cp1252"])[0]


def _decode_with(data: bytes, codec: str) -> str:
    if codec == "utf-8":
        return data.decode("utf-8", "replace")
    if codec in _WINDOWS_TABLES:
        return codecs.charmap_decode(data, "strict", _WINDOWS_TABLES[codec])[0]
    if codec == "iso2022_jp":
        return _decode_iso2022jp(data)
    if codec in _ISO2022JP_PYTHON_FIRST:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            return _decode_iso2022jp(data)
    if codec == "euc_jp":
        return data.decode("euc_jp", _EUCJP).translate(_TO_CP932_FORMS)
    if codec == "koi8-u":
        return data.decode("koi8-u", "replace").translate(_KOI8_RU)
    text = data.decode(codec, "replace")
    if codec not in _CLEAN_OUTPUT and not text.isascii():
        # utf-7 and friends can yield lone surrogates, which no UTF-8 store will accept.
        text = _LONE_SURROGATE.sub("\ufffd", text)
    return text


def _decode(data: bytes, charset: str | None) -> str:
    codec = codec_for(charset)
    # A byte order mark beats the label, as in browsers.
    if data.startswith(_UTF8_BOM):
        return data[3:].decode("utf-8", "replace")
    if data[:2] in (b"\xfe\xff", b"\xff\xfe") and not (codec or "").startswith("utf-32"):
        return data[2:].decode("utf-16-be" if data[0] == 0xFE else "utf-16-le", "replace")
    if codec is None or codec == "cp1252":
        return _guess(data)
    try:
        return _decode_with(data, codec)
    except Exception:  # a codec that fails in a way 'replace' does not cover: guess instead
        return _guess(data)


def decode(data: bytes, charset: str | None) -> str:
    """Decode `data` labelled `charset` (as found in mail) to text; never raises.

    - A BOM (UTF-8, UTF-16) overrides the label and is removed.
    - UTF-8 labels: invalid sequences become U+FFFD.
    - Labels WHATWG folds into windows-1252 (us-ascii, iso-8859-1, latin1, cp1252 ...),
      unknown labels and None: UTF-8 if the bytes are valid UTF-8, else windows-1252;
      7-bit bytes containing ``ESC $`` are ISO-2022-JP.
    - Shift_JIS as CP932, EUC-JP and ISO-2022-JP through CP932's JIS mapping (NEC/IBM
      extensions such as ①, ㈱, Ⅰ, № decode; JIS 0x2141 is U+FF5E FULLWIDTH TILDE).
    - Anything else with its codec; undecodable bytes become U+FFFD.
    """
    try:
        return _decode(bytes(data), charset)
    except Exception:  # last line of defence: this function is total
        try:
            return bytes(data).decode("utf-8", "replace")
        except Exception:
            return ""


# ---------------------------------------------------------------------------------------------
# The charset an HTML document declares for itself: a simplified form of the WHATWG prescan
# (https://html.spec.whatwg.org/multipage/parsing.html#prescan-a-byte-stream-to-determine-its-encoding).

_PRESCAN_BYTES = 1024
_HTML_COMMENT = re.compile(rb"<!--.*?(?:-->|\Z)", re.DOTALL)
_META_TAG = re.compile(rb"<meta[\s/]([^>]*+)", re.IGNORECASE)
_HTML_ATTRIBUTE = re.compile(rb"""([^\s=/>]++)(?:\s*+=\s*+(?:"([^"]*+)"?|'([^']*+)'?|([^\s>]*+)))?""")
_CONTENT_CHARSET = re.compile(rb"""charset\s*+=\s*+["']?([^\s;"']++)""", re.IGNORECASE)


def _meta_label(attributes: bytes) -> str | None:
    values: dict[bytes, bytes] = {}
    for match in _HTML_ATTRIBUTE.finditer(attributes):
        name = match.group(1).lower()
        value = next((group for group in match.groups()[1:] if group is not None), b"")
        values.setdefault(name, value)
    if b"charset" in values:
        return values[b"charset"].decode("latin-1").strip()
    if values.get(b"http-equiv", b"").strip().lower() == b"content-type":
        found = _CONTENT_CHARSET.search(values.get(b"content", b""))
        if found:
            return found.group(1).decode("latin-1")
    return None


def html_meta_charset(data: bytes) -> str | None:
    """The charset label of the first ``<meta charset>`` or ``http-equiv`` Content-Type in the first 1024 bytes.

    For an HTML part that came without a MIME charset: the MIME label wins whenever there is
    one. As in the WHATWG prescan, a UTF-16 label means UTF-8 (the bytes could not have been
    read as ASCII otherwise) and x-user-defined means windows-1252; a label that names no
    charset we know is ignored and the search goes on. Never raises.
    """
    try:
        head = _HTML_COMMENT.sub(b"", bytes(data[:_PRESCAN_BYTES]))
        for tag in _META_TAG.finditer(head):
            label = _meta_label(tag.group(1))
            if label is None:
                continue
            cleaned = _strip_label(label)
            if cleaned == "x-user-defined":
                return "windows-1252"
            codec = codec_for(cleaned)
            if codec is None:
                continue
            return "utf-8" if codec.startswith("utf-16") else cleaned
    except Exception:  # total by contract
        return None
    return None
