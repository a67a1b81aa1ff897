"""Charsets: labels from the wild resolve like browsers do; decode() is total."""

from __future__ import annotations

import codecs
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.mime import japanese
from chalicelib.mime.charsets import codec_for, decode
from chalicelib.mime.labels import WHATWG_LABELS
from tests.support.examples import examples


@pytest.fixture(scope="module", autouse=True)
def aws_env() -> str:
    """Shadow conftest's AWS emulator fixture: these tests are pure and need no server."""
    return ""


PROPERTY = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

ALL_LABELS = sorted(label for labels in WHATWG_LABELS.values() for label in labels)

# What cp932 gives for the JIS X 0208 characters whose Unicode mapping differs between
# Python's JIS codecs and Windows (the module documents that it keeps cp932's).
CP932_FORMS = str.maketrans("\u301c\u2016\u2212\u00a2\u00a3\u00ac", "\uff5e\u2225\uff0d\uffe0\uffe1\uffe2")

# ① ㈱ ～ Ⅰ № ㍻ as Windows writes them (NEC row 13 and FULLWIDTH TILDE).
NEC_TEXT = "①㈱～Ⅰ№㍻"
NEC_SJIS = b"\x87\x40\x87\x8a\x81\x60\x87\x54\x87\x82\x87\x7e"
NEC_JIS = b"\x1b$B-!-j!A-5-b-_\x1b(B"


# --------------------------------------------------------------------------------------------
# codec_for


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("utf-8", "utf-8"),
        ("UTF-8", "utf-8"),
        ("utf8", "utf-8"),
        ("UTF_8", "utf-8"),
        (' "utf-8" ', "utf-8"),
        ("'UTF-8'", "utf-8"),
        ("utf-8;", "utf-8"),
        ("us-ascii", "cp1252"),
        ("iso-8859-1", "cp1252"),
        ("ISO_8859-1", "cp1252"),
        ("ISO8859-1", "cp1252"),
        ("latin1", "cp1252"),
        ("latin-1", "cp1252"),
        ("Cp1252", "cp1252"),
        ("windows-1252", "cp1252"),
        ("windows1251", "cp1251"),
        ("iso-8859-9", "cp1254"),
        ("tis-620", "cp874"),
        ("Shift_JIS", "cp932"),
        ("x-sjis", "cp932"),
        ("sjis", "cp932"),
        ("windows-31j", "cp932"),
        ("euc-jp", "euc_jp"),
        ("ISO-2022-JP", "iso2022_jp"),
        ("iso-2022-jp-2", "iso2022_jp_2"),
        ("euc-kr", "cp949"),
        ("ks_c_5601-1987", "cp949"),
        ("gb2312", "gb18030"),
        ("GBK", "gb18030"),
        ("cp936", "gb18030"),
        ("big5", "big5hkscs"),
        ("koi8-r", "koi8-r"),
        ("koi8-u", "koi8-u"),
        ("iso-8859-16", "iso8859-16"),
        ("utf-16", "utf-16-le"),
        ("utf-16be", "utf-16-be"),
        ("iso-2022-kr", "iso2022_kr"),
        ("cp850", "cp850"),
        ("IBM850", "cp850"),
        ("cp437", "cp437"),
        ("utf-7", "utf-7"),
    ],
)
def test_codec_for_resolves_labels_as_browsers_do(label: str, codec: str) -> None:
    assert codec_for(label) == codec


@pytest.mark.parametrize(
    "label",
    [None, "", "   ", '""', "unknown-8bit", "x-unknown", "x-user-defined", "replacement", "iso-2022-cn",
     "garbage", "base64", "rot13", "undefined", "unicode_escape", "raw-unicode-escape", "idna",
     "../../etc/passwd"],
)
def test_codec_for_unknown_labels_is_none(label: str | None) -> None:
    assert codec_for(label) is None


def test_every_whatwg_label_maps_to_a_canonical_python_codec() -> None:
    guessed = {"x-user-defined", "replacement", "iso-2022-cn", "iso-2022-cn-ext"}
    for label in ALL_LABELS:
        codec = codec_for(label)
        if label in guessed:
            assert codec is None, label
            continue
        assert codec is not None, label
        assert codecs.lookup(codec).name == codec, label
        # Upper case and punctuation variants resolve the same way.
        assert codec_for(label.upper().replace("-", "_")) == codec, label


def test_squashed_labels_do_not_collide() -> None:
    by_key: dict[str, str | None] = {}
    for label in ALL_LABELS:
        key = "".join(ch for ch in label if ch.isalnum())
        codec = codec_for(label)
        assert by_key.setdefault(key, codec) == codec, label


# --------------------------------------------------------------------------------------------
# Japanese


def test_shift_jis_label_decodes_cp932_extensions() -> None:
    text = "株式会社テスト、日本語のメールです。ｶﾀｶﾅ " + NEC_TEXT
    data = text.encode("cp932")
    assert data.endswith(NEC_SJIS)
    for label in ("Shift_JIS", "shift-jis", "x-sjis", "sjis", "MS932", "windows-31j", "cp932"):
        assert decode(data, label) == text


def test_shift_jis_literal_nec_bytes() -> None:
    assert decode(b"abc" + NEC_SJIS, "shift_jis") == "abc" + NEC_TEXT


def test_iso_2022_jp_with_nec_characters() -> None:
    data = "日本語のテキスト".encode("iso2022_jp") + NEC_JIS + b" abc"
    assert decode(data, "ISO-2022-JP") == "日本語のテキスト①㈱～Ⅰ№㍻ abc"


def test_iso_2022_jp_literal_bytes_all_modes() -> None:
    data = (
        b"\x1b$B$3$s$K$A$O\x1b(B Hello "  # こんにちは in JIS X 0208
        b"\x1b$@4A;z\x1b(B "  # 漢字 after the 1978 designation
        b"\x1b(I6@6E\x1b(B "  # ｶﾀｶﾅ via ESC ( I
        b"\x0e6@\x0f! "  # ｶﾀ via SO/SI
        b"\x1b(Jhttp://example.com/~user\\x\x1b(B"  # JIS-Roman kept as ASCII
    )
    assert decode(data, "iso-2022-jp") == "こんにちは Hello 漢字 ｶﾀｶﾅ ｶﾀ! http://example.com/~user\\x"


def test_iso_2022_jp_keeps_fullwidth_tilde_not_wave_dash() -> None:
    # JIS 0x2141: cp932 and browsers say U+FF5E, Python's iso2022_jp says U+301C.
    assert decode(b"\x1b$B!A\x1b(B", "iso-2022-jp") == "\uff5e"
    assert decode("〜".encode("iso2022_jp"), "iso-2022-jp") == "～"


def test_iso_2022_jp_broken_input_degrades_locally() -> None:
    assert decode(b"\x1b$B$3\r\n$s\x1b(B", "iso-2022-jp") == "こ\r\nん"  # CR LF inside JIS mode
    assert decode(b"\x1b$B$3$\x1b(Bx", "iso-2022-jp") == "こ\ufffdx"  # half a character
    assert decode(b"a\x1b%Gb", "iso-2022-jp") == "a\ufffd%Gb"  # unknown escape
    assert decode(b"\x1b$B\x7f\x7f\x1b(B", "iso-2022-jp") == "\ufffd\ufffd"
    assert decode(b"\x1b$B)!\x1b(B", "iso-2022-jp") == "\ufffd"  # undefined row: one U+FFFD, no "!"
    assert decode(b"\x1b$B", "iso-2022-jp") == ""


def test_iso_2022_jp_label_on_shift_jis_or_utf8_bytes() -> None:
    assert decode("日本語".encode("cp932") + NEC_SJIS, "iso-2022-jp") == "日本語" + NEC_TEXT
    assert decode("日本語".encode(), "iso-2022-jp") == "日本語"


def test_iso_2022_jp_2_goes_through_python_then_our_decoder() -> None:
    assert decode("한국어 日本".encode("iso2022_jp_2"), "ISO-2022-JP-2") == "한국어 日本"
    assert decode(b"\x1b$B-!\x1b(B", "iso-2022-jp-2") == "①"


def test_seven_bit_japanese_without_a_label_is_sniffed() -> None:
    data = "件名なし".encode("iso2022_jp")
    for label in (None, "us-ascii", "unknown-8bit"):
        assert decode(data, label) == "件名なし"
    assert decode(data, "utf-8") == data.decode("ascii")  # an explicit label is trusted


def test_euc_jp_decodes_nec_rows_through_cp932() -> None:
    data = "日本語".encode("euc_jp") + b"\xad\xa1\xad\xea\xa1\xc1" + b"\x8e\xb6"
    assert decode(data, "EUC-JP") == "日本語①㈱～ｶ"
    assert decode(b"\xa9\xa1A", "euc-jp") == "\ufffdA"


jis0208_text = st.text(
    alphabet=st.characters(codec="iso2022_jp", min_codepoint=0x3000, max_codepoint=0x9FFF), max_size=40
)


@PROPERTY
@given(jis0208_text)
def test_japanese_encodings_agree_with_each_other(text: str) -> None:
    expected = text.translate(CP932_FORMS)
    assert decode(text.encode("iso2022_jp"), "iso-2022-jp") == expected
    assert decode(text.encode("shift_jis"), "shift_jis") == expected
    assert decode(text.encode("euc_jp"), "euc-jp") == expected


# --------------------------------------------------------------------------------------------
# Other scripts


def test_korean() -> None:
    text = "한국어 메일입니다"
    assert decode(text.encode("euc_kr"), "ks_c_5601-1987") == text
    assert decode(text.encode("euc_kr"), "euc-kr") == text
    # 똠 exists only in UHC (cp949), which is what mailers mean by either label.
    assert decode("똠방각하".encode("cp949"), "euc-kr") == "똠방각하"
    assert decode("똠".encode("cp949"), "KS_C_5601-1987") == "똠"


def test_iso_2022_kr_is_decoded_not_replaced() -> None:
    assert decode("한국어".encode("iso2022_kr"), "iso-2022-kr") == "한국어"


def test_chinese_gb2312_label_on_gbk_characters() -> None:
    text = "镕堃喆犇 中文"
    with pytest.raises(UnicodeEncodeError):
        text.encode("gb2312")
    assert decode(text.encode("gbk"), "gb2312") == text
    assert decode(text.encode("gb18030"), "GB18030") == text


def test_big5_hkscs() -> None:
    assert decode("香港繁體".encode("big5hkscs"), "big5") == "香港繁體"


def test_cyrillic() -> None:
    text = "Привет, мир! Ёлка"
    assert decode(text.encode("koi8_r"), "KOI8-R") == text
    assert decode(text.encode("cp1251"), "windows-1251") == text
    assert decode(text.encode("cp1251"), "Windows1251") == text
    assert decode(text.encode("cp1251"), "x-cp1251") == text
    # WHATWG's KOI8-U is KOI8-RU: 0xAE and 0xBE are Belarusian ў and Ў.
    assert decode(b"\xae\xbe", "koi8-u") == "ўЎ"


def test_windows_1252_labelled_iso_8859_1() -> None:
    data = b"\x80 100, \x93quoted\x94 caf\xe9 \x85"
    assert decode(data, "iso-8859-1") == "€ 100, “quoted” café …"
    assert decode(data, "ISO_8859-1") == "€ 100, “quoted” café …"
    assert decode(data, "Cp1252") == "€ 100, “quoted” café …"


def test_windows_1252_unassigned_bytes_are_c1_controls() -> None:
    assert decode(b"a\x81b\x8d\x8f\x90\x9d", "windows-1252") == "a\x81b\x8d\x8f\x90\x9d"


def test_iso_8859_1() -> None:
    assert decode(b"caf\xe9 na\xefve \xa9", "ISO-8859-1") == "café naïve ©"


def test_iso_8859_15_and_2() -> None:
    assert decode(b"\xa4", "iso-8859-15") == "€"
    assert decode("Zażółć".encode("iso8859_2"), "latin2") == "Zażółć"


def test_cp850() -> None:
    assert decode("café Ñandú".encode("cp850"), "cp850") == "café Ñandú"
    assert decode(b"caf\x82", "IBM850") == "café"


def test_us_ascii_label_on_utf8_and_latin1_bytes() -> None:
    assert decode("café ünïcödé 日本".encode(), "us-ascii") == "café ünïcödé 日本"
    assert decode("café".encode("latin-1"), "us-ascii") == "café"
    assert decode(b"plain", "US-ASCII") == "plain"


def test_unknown_labels_guess_utf8_then_windows_1252() -> None:
    for label in ("unknown-8bit", "x-user-defined", "no-such-charset", None, ""):
        assert decode("naïve 日本".encode(), label) == "naïve 日本"
        assert decode(b"na\xefve \x93q\x94", label) == "naïve “q”"


# --------------------------------------------------------------------------------------------
# UTF-8, BOMs, UTF-16


def test_invalid_utf8_becomes_replacement_at_the_right_places() -> None:
    assert decode(b"ab\xffcd\xe2\x82ef\xc3", "utf-8") == "ab\ufffdcd\ufffdef\ufffd"
    assert decode(b"\xc0\xafA", "utf8") == "\ufffd\ufffdA"  # overlong
    assert decode(b"\xed\xa0\x80B", "UTF-8") == "\ufffd\ufffd\ufffdB"  # a surrogate
    assert decode("ok ✓".encode() + b"\x80", "utf-8") == "ok ✓\ufffd"


def test_utf8_bom_is_stripped_and_beats_the_label() -> None:
    assert decode(b"\xef\xbb\xbfhello", "utf-8") == "hello"
    assert decode(b"\xef\xbb\xbf\xd0\x96", "windows-1251") == "Ж"
    assert decode(b"\xef\xbb\xbf", None) == ""


def test_utf16() -> None:
    assert decode("hi ✓".encode("utf-16"), "utf-16") == "hi ✓"
    assert decode("\ufeffhi".encode("utf-16-be"), "utf-16") == "hi"
    assert decode("hi".encode("utf-16-le"), "utf-16") == "hi"  # WHATWG: no BOM means LE
    assert decode("hi".encode("utf-16-be"), "UTF-16BE") == "hi"
    assert decode(b"h\x00i", "utf-16le") == "h\ufffd"  # odd length


def test_utf7_output_has_no_lone_surrogates() -> None:
    assert decode(b"+2D3-", "utf-7") == "\ufffd"
    assert decode(b"Hi Mom -+Jjo--!", "utf-7") == "Hi Mom -☺-!"


def test_accepts_other_bytes_like_objects() -> None:
    assert decode(cast(bytes, bytearray(b"caf\xc3\xa9")), "utf-8") == "café"
    assert decode(cast(bytes, memoryview(b"caf\xe9")), "latin1") == "café"


def test_large_inputs() -> None:
    text = "日本語 text ü " * 50_000
    assert decode(text.encode(), "utf-8") == text
    assert decode(text.encode(), None) == text
    jis = ("日本語のテキスト abc\r\n" * 5_000).encode("iso2022_jp")
    assert decode(jis, "iso-2022-jp") == "日本語のテキスト abc\r\n" * 5_000


# --------------------------------------------------------------------------------------------
# Totality

labels = st.one_of(
    st.none(),
    st.sampled_from(ALL_LABELS),
    st.sampled_from(["utf-7", "cp850", "hz", "iso2022_jp_3", "iso-2022-jp-2004", "utf-32", "unknown-8bit", "cp50220"]),
    st.text(max_size=20),
)


def _assert_clean_text(result: object) -> None:
    assert isinstance(result, str)
    result.encode("utf-8")  # no lone surrogates


@PROPERTY
@given(st.binary(max_size=300), labels)
def test_decode_never_raises(data: bytes, label: str | None) -> None:
    _assert_clean_text(decode(data, label))


@PROPERTY
@given(
    st.lists(
        st.sampled_from([b"\x1b$B", b"\x1b(B", b"\x1b(J", b"\x1b(I", b"\x1b$(D", b"\x0e", b"\x0f", b"\x1b", b"\r\n"])
        | st.binary(max_size=6),
        max_size=30,
    ),
    st.sampled_from(["iso-2022-jp", "iso-2022-jp-2", "euc-jp", "shift_jis", None]),
)
def test_japanese_decoders_never_raise_on_escape_soup(pieces: list[bytes], label: str | None) -> None:
    _assert_clean_text(decode(b"".join(pieces), label))


@PROPERTY
@given(st.text(max_size=200), st.sampled_from(["utf-8", "us-ascii", "iso-8859-1", "unknown-8bit", None]))
def test_valid_utf8_survives_ascii_latin_and_unknown_labels(text: str, label: str | None) -> None:
    text = text.replace("\ud800", "")  # keep it encodable
    if text.startswith("\ufeff") or "\x1b$" in text or any("\ud800" <= ch <= "\udfff" for ch in text):
        return
    assert decode(text.encode(), label) == text


@PROPERTY
@given(st.binary(min_size=1, max_size=200))
def test_latin_labels_fall_back_to_windows_1252_byte_for_byte(data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return
    if data.startswith((b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe")):
        return
    expected = "".join(
        chr(b) if b in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else bytes([b]).decode("cp1252") for b in data
    )
    assert decode(data, "iso-8859-1") == expected


_JIS_TOKENS = [b"\x1b$B", b"\x1b(B", b"\x1b$@", b"\x1b(J", b"\x0e", b"\x0f", b"\n", b"\r\n", b" ", b"a", b"~",
               b"\\", b"\x1b", b"%?", b"!A", b"!B", b"!]", b"!q", b"!r", b"\"L", b"-!", b"y|", b"\x7f", b"\x80"]


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(st.sampled_from(_JIS_TOKENS), min_size=1, max_size=16).map(b"".join))
def test_the_fast_iso2022jp_path_gives_the_walks_text(data: bytes) -> None:
    assert japanese.decode_iso2022jp(data) == japanese._walk_iso2022jp(data)


def test_every_jis_x_0208_character_decodes_as_the_walk_does() -> None:
    for row in range(0x21, 0x7F):
        pairs = b"".join(bytes([row, cell]) for cell in range(0x21, 0x7F))
        data = b"\x1b$B" + pairs + b"\x1b(B"
        assert japanese.decode_iso2022jp(data) == japanese._walk_iso2022jp(data)


# Real UTF-8 under a label it does not fit (tests/corpus/wild/mail-parser/mail_test_12.eml is a whole mail of it).
UTF8_CHINESE = "你好！我公司可代开各类增值税发票"


@pytest.mark.parametrize("label", ["gb2312", "GBK", "gb18030", "big5", "euc-kr", "shift_jis", "euc-jp", "iso-2022-jp"])
def test_utf8_wins_over_a_label_that_does_not_fit_it(label: str) -> None:
    data = UTF8_CHINESE.encode("utf-8")
    assert decode(data, label) == UTF8_CHINESE


@pytest.mark.parametrize(
    ("text", "label"),
    [("报价单", "gb2312"), ("繁體中文", "big5"), ("회의 자료", "euc-kr"), ("Привет", "koi8-r"), ("①見積", "shift_jis")],
)
def test_text_in_its_own_charset_keeps_its_label(text: str, label: str) -> None:
    codec = {"shift_jis": "cp932"}.get(label, label)
    assert decode(text.encode(codec), label) == text


@pytest.mark.parametrize(
    ("label", "expected"), [("windows-1251", "РџСЂРёРІРµС‚"), ("koi8-r", "п÷я─п╦п╡п╣я┌")]
)
def test_utf8_that_reads_as_plausible_text_in_the_label_keeps_the_label(label: str, expected: str) -> None:
    # Valid in the label's charset and all assigned: nothing says it is not Cyrillic.
    assert decode("Привет".encode(), label) == expected


def test_utf16_labels_are_not_second_guessed() -> None:
    assert decode("hi".encode("utf-16-le"), "utf-16le") == "hi"
