"""Japanese as Windows and browsers read it: ISO-2022-JP, EUC-JP and Shift_JIS all through CP932.

The same text sent in any of the three comes out as the same string. JIS
0x2141 comes out as U+FF5E FULLWIDTH TILDE (what Windows and browsers
produce), not U+301C WAVE DASH (what Python's ``shift_jis``/``euc_jp``/
``iso2022_jp`` codecs produce); likewise U+2225, U+FF0D, U+FFE0, U+FFE1 and
U+FFE2. The NEC and IBM extension rows (①, ㈱, Ⅰ, №) decode.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

__all__ = ["decode_eucjp", "decode_iso2022jp"]

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


_PAIR = "inbound-mail.japanese.pair"
_EUCJP = "inbound-mail.japanese.eucjp"
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
# exact (the agreement is pinned in tests); anything else is walked.
_JIS_TO_CP932 = (
    ("\u301c", "\uff5e"), ("\u2016", "\u2225"), ("\u2212", "\uff0d"), ("\u00a2", "\uffe0"),
    ("\u00a3", "\uffe1"), ("\u00ac", "\uffe2"),
)


def _jis_to_cp932(text: str) -> str:
    # Six searches and, rarely, a replace: far cheaper than str.translate, which looks up every character.
    for jis, cp932 in _JIS_TO_CP932:
        if jis in text:
            text = text.replace(jis, cp932)
    return text


def decode_iso2022jp(data: bytes) -> str:
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


def decode_eucjp(data: bytes) -> str:
    return data.decode("euc_jp", _EUCJP).translate(_TO_CP932_FORMS)
