"""Mail bytes and the charset label they came with → text, never raising.

Labels resolve as browsers resolve them (``labels``), and decoding follows the
WHATWG decoders too: undecodable bytes become U+FFFD, a byte order mark
overrides the label. Japanese goes through CP932 throughout (``japanese``).
"""

from __future__ import annotations

import codecs
import re
import unicodedata

from chalicelib.mime.japanese import decode_eucjp, decode_iso2022jp
from chalicelib.mime.labels import KNOWN_CODECS, codec_for, strip_label

__all__ = ["charset_hint", "codec_for", "decode", "decode_html", "html_meta_charset"]

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
            return decode_iso2022jp(data)
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
        return decode_iso2022jp(data)
    if codec in _ISO2022JP_PYTHON_FIRST:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            return decode_iso2022jp(data)
    if codec == "euc_jp":
        return decode_eucjp(data)
    if codec == "koi8-u":
        return data.decode("koi8-u", "replace").translate(_KOI8_RU)
    text = data.decode(codec, "replace")
    if codec not in KNOWN_CODECS and not text.isascii():
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
        text = _decode_with(data, codec)
    except Exception:  # a codec that fails in a way 'replace' does not cover: guess instead
        return _guess(data)
    if data.isascii() or codec.startswith("utf"):  # UTF-16 and -32 are not supersets of ASCII
        return text
    return _mislabelled_utf8(data, codec, text) or text


# Private use, where UTF-8 read as GB18030 or Big5 lands; the test for unassigned ones is below.
_PRIVATE_USE = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")


def _odd(text: str) -> bool:
    """Holds what no sender writes: U+FFFD, a private-use or an unassigned character."""
    if "\ufffd" in text or _PRIVATE_USE.search(text):
        return True
    return any(unicodedata.category(char) == "Cn" for char in set(text) if char > "\x7f")


def _valid_in(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    except LookupError:
        return True  # nothing to judge by
    return True


def _mislabelled_utf8(data: bytes, codec: str, text: str) -> str | None:
    """The bytes as UTF-8, when they are UTF-8 the label does not fit: UTF-8 wins, for every label.

    Valid UTF-8 with 8-bit bytes is rarely anything else; it wins when the
    bytes are not valid in the labelled charset, or read in it give
    characters no sender writes (private-use, unassigned) where UTF-8 gives none.
    """
    try:
        utf8 = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not _valid_in(data, codec) or (_odd(text) and not _odd(utf8)):
        return utf8
    return None


def decode(data: bytes, charset: str | None) -> str:
    """Decode `data` labelled `charset` (as found in mail) to text; never raises.

    - A BOM (UTF-8, UTF-16) overrides the label and is removed.
    - UTF-8 labels: invalid sequences become U+FFFD.
    - Labels WHATWG folds into windows-1252 (us-ascii, iso-8859-1, latin1, cp1252 ...),
      unknown labels and None: UTF-8 if the bytes are valid UTF-8, else windows-1252;
      7-bit bytes containing ``ESC $`` are ISO-2022-JP.
    - Shift_JIS as CP932, EUC-JP and ISO-2022-JP through CP932's JIS mapping (NEC/IBM
      extensions such as ①, ㈱, Ⅰ, № decode; JIS 0x2141 is U+FF5E FULLWIDTH TILDE).
    - Anything else with its codec; undecodable bytes become U+FFFD. But 8-bit bytes
      that are valid UTF-8 and not valid in the labelled charset, or that read in it
      give private-use or unassigned characters, are read as UTF-8, whatever the label.
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
            cleaned = strip_label(label)
            if cleaned == "x-user-defined":
                return "windows-1252"
            codec = codec_for(cleaned)
            if codec is None:
                continue
            return "utf-8" if codec.startswith("utf-16") else cleaned
    except Exception:  # total by contract
        return None
    return None


# ---------------------------------------------------------------------------------------------
# Which label to believe

_ASCII_LABELS = frozenset({"usascii", "ascii", "ansix341968", "us", "iso646us"})


def _is_ascii_label(label: str | None) -> bool:
    return label is None or re.sub(r"[^a-z0-9]", "", label.lower()) in _ASCII_LABELS


def decode_html(data: bytes, label: str | None) -> str:
    """An HTML part: its MIME (or form) label wins; without one, or with an ASCII one, its own ``<meta charset>``."""
    if _is_ascii_label(label) and not data.isascii():
        label = html_meta_charset(data) or label
    return decode(data, label)


def charset_hint(*labels: object) -> str | None:
    """The first label that says more than "UTF-8 or windows-1252": the charset to read raw 8-bit headers in.

    Only charsets that keep ASCII as ASCII can explain 8-bit bytes among ASCII
    ones; UTF-7, UTF-16 and UTF-32 cannot.
    """
    for label in labels:
        if not isinstance(label, str):
            continue
        codec = codec_for(label)
        if codec is not None and codec != "cp1252" and not codec.startswith("utf"):
            return label
    return None
