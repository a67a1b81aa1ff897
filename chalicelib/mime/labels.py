"""Charset labels as found in mail → Python codec names.

Labels are resolved the way browsers resolve them (the WHATWG Encoding
Standard), because mail clients copy the same Windows-centric habits: a
message labelled ``iso-8859-1`` or ``us-ascii`` is routinely windows-1252, one
labelled ``Shift_JIS`` is CP932, one labelled ``euc-kr`` is UHC.
"""

from __future__ import annotations

import codecs
import functools
import re

__all__ = ["KNOWN_CODECS", "WHATWG_LABELS", "codec_for", "strip_label"]


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


def strip_label(label: str) -> str:
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
    cleaned = strip_label(label)
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


# The codecs our own tables name, none of which can produce a lone surrogate.
KNOWN_CODECS = frozenset(codec for codec in _EXACT.values() if codec is not None)
